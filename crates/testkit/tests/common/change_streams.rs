//! Helpers of the change-stream tests: deployments with two raw clients, `$changeStream`
//! aggregates, getMores and what their replies hold.

use bson::{Bson, Document, doc};
use mongo_testkit::{Deployment, DeploymentKind, ServerOptions};

use super::{Client, ok};

pub async fn deployment(kind: DeploymentKind) -> (Deployment, Client, Client) {
    let d = Deployment::start(kind, ServerOptions::default())
        .await
        .unwrap();
    let a = Client::connect(d.servers()[0].address()).await;
    let b = Client::connect(d.servers()[0].address()).await;
    (d, a, b)
}

pub async fn replica_set() -> (Deployment, Client, Client) {
    deployment(DeploymentKind::ReplicaSet { members: 1 }).await
}

pub fn cursor(reply: &Document) -> &Document {
    reply
        .get_document("cursor")
        .unwrap_or_else(|_| panic!("no cursor in {reply}"))
}

pub fn batch(reply: &Document) -> Vec<Document> {
    let c = cursor(reply);
    c.get_array("firstBatch")
        .or_else(|_| c.get_array("nextBatch"))
        .unwrap()
        .iter()
        .filter_map(|d| d.as_document().cloned())
        .collect()
}

pub fn cursor_id(reply: &Document) -> i64 {
    cursor(reply).get_i64("id").unwrap()
}

pub fn pbrt(reply: &Document) -> Document {
    cursor(reply)
        .get_document("postBatchResumeToken")
        .unwrap_or_else(|_| panic!("no postBatchResumeToken in {reply}"))
        .clone()
}

pub fn op_type(event: &Document) -> &str {
    event.get_str("operationType").unwrap()
}

pub async fn watch(c: &mut Client, db: &str, target: Bson, spec: Document) -> Document {
    let r = c
        .command(
            db,
            doc! { "aggregate": target, "pipeline": [{ "$changeStream": spec }], "cursor": {} },
        )
        .await;
    assert!(ok(&r), "{r}");
    r
}

pub async fn get_more(c: &mut Client, db: &str, coll: &str, id: i64) -> Document {
    let r = c
        .command(
            db,
            doc! { "getMore": id, "collection": coll, "maxTimeMS": 50 },
        )
        .await;
    assert!(ok(&r), "{r}");
    r
}

/// getMores until `n` events came (or a few empty batches in a row).
pub async fn events(c: &mut Client, db: &str, coll: &str, id: i64, n: usize) -> Vec<Document> {
    let mut out = Vec::new();
    for _ in 0..20 {
        if out.len() >= n {
            break;
        }
        let r = get_more(c, db, coll, id).await;
        out.extend(batch(&r));
        if cursor_id(&r) == 0 {
            break;
        }
    }
    out
}

pub async fn run(c: &mut Client, db: &str, cmd: Document) -> Document {
    let r = c.command(db, cmd).await;
    assert!(ok(&r), "{r}");
    r
}
