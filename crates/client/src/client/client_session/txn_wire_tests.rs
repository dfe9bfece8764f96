//! Transactions on the wire, against a testkit replica set, through the public API: a
//! committed transaction's writes appear together, an aborted one's never, the first command
//! starts the transaction and commit carries its write concern, `with_transaction` commits
//! its callback's work, and misuse errors come before anything is sent.

use bson::{Document, doc};
use mongo_events::EventRecorder;
use mongo_events::command::CommandEvent;
use mongo_testkit::ReplicaSet;

use crate::client::Client;
use crate::options::ClientOptions;

use super::{TransactionOptions, TransactionState};

async fn client(uri: &str, recorder: &std::sync::Arc<EventRecorder>) -> Client {
    let mut listeners = mongo_events::Listeners::new();
    listeners.add_all(recorder.clone());
    Client::builder()
        .options(ClientOptions::parse(uri).unwrap())
        .listeners(listeners)
        .build()
        .await
        .unwrap()
}

/// The started commands, in order.
fn started(r: &EventRecorder) -> Vec<Document> {
    r.command_events()
        .into_iter()
        .filter_map(|e| match e {
            CommandEvent::Started(s) => Some(s.command),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn commit_shows_the_writes_and_abort_leaves_nothing() {
    let rs = ReplicaSet::start("txnWire", 1).await.unwrap();
    let recorder = EventRecorder::shared();
    let client = client(&rs.uri(), &recorder).await;
    let coll = client.database("db").collection::<Document>("c");
    coll.insert_one(doc! {"_id": 0}).await.unwrap();
    let mut s = client.start_session(None).unwrap();

    s.start_transaction(None).unwrap();
    assert_eq!(s.transaction_state(), TransactionState::Starting);
    coll.insert_one(doc! {"_id": 1})
        .session(&mut s)
        .await
        .unwrap();
    coll.insert_one(doc! {"_id": 2})
        .session(&mut s)
        .await
        .unwrap();
    assert_eq!(s.transaction_state(), TransactionState::InProgress);
    // Not visible outside the transaction before the commit.
    assert_eq!(coll.count_documents(doc! {}).await.unwrap(), 1);
    s.commit_transaction().await.unwrap();
    assert_eq!(coll.count_documents(doc! {}).await.unwrap(), 3);

    s.start_transaction(None).unwrap();
    coll.insert_one(doc! {"_id": 3})
        .session(&mut s)
        .await
        .unwrap();
    s.abort_transaction().await.unwrap();
    assert_eq!(s.transaction_state(), TransactionState::Aborted);
    assert_eq!(coll.count_documents(doc! {"_id": 3}).await.unwrap(), 0);

    let inserts: Vec<Document> = started(&recorder)
        .into_iter()
        .filter(|c| c.contains_key("lsid") && c.contains_key("autocommit"))
        .collect();
    let first = inserts.first().unwrap();
    assert_eq!(first.get_bool("startTransaction").ok(), Some(true));
    // The server session may come from the pool (the first insert's): numbers go on from it.
    let number = first.get_i64("txnNumber").unwrap();
    let second = inserts.get(1).unwrap();
    assert!(!second.contains_key("startTransaction") && !second.contains_key("readConcern"));
    let aborted = inserts.last().unwrap();
    assert_eq!(second.get_i64("txnNumber").ok(), Some(number));
    assert_eq!(aborted.get_i64("txnNumber").ok(), Some(number + 1));
}

#[tokio::test]
async fn misuse_is_an_error_and_an_empty_commit_sends_nothing() {
    let rs = ReplicaSet::start("txnMisuse", 1).await.unwrap();
    let recorder = EventRecorder::shared();
    let client = client(&rs.uri(), &recorder).await;
    let mut s = client.start_session(None).unwrap();
    assert!(s.commit_transaction().await.is_err());
    assert!(s.abort_transaction().await.is_err());
    s.start_transaction(TransactionOptions::default()).unwrap();
    assert!(s.start_transaction(None).is_err());
    s.commit_transaction().await.unwrap();
    assert_eq!(s.transaction_state(), TransactionState::CommittedEmpty);
    assert!(s.abort_transaction().await.is_err());
    assert!(
        started(&recorder)
            .iter()
            .all(|c| !c.contains_key("commitTransaction"))
    );
}

#[tokio::test]
async fn with_transaction_commits_the_callbacks_work() {
    let rs = ReplicaSet::start("txnWith", 1).await.unwrap();
    let recorder = EventRecorder::shared();
    let client = client(&rs.uri(), &recorder).await;
    let coll = client.database("db").collection::<Document>("c");
    let mut s = client.start_session(None).unwrap();
    let n = s
        .with_transaction(
            &coll,
            |s, coll| {
                Box::pin(async move {
                    coll.insert_one(doc! {"_id": 7}).session(s).await?;
                    Ok(7)
                })
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(n, 7);
    assert_eq!(s.transaction_state(), TransactionState::Committed);
    assert_eq!(coll.count_documents(doc! {"_id": 7}).await.unwrap(), 1);
}
