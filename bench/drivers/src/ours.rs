//! OUR client (`mongo-client`) behind [`Driver`]. Every call into our API lives in this module,
//! so that an API change (the fluent builders: `coll.find(filter).await`) is ported here alone.

use std::time::Duration;

use bson::{Document, doc};
use mongo_client::{Client, Collection, Database};

use crate::Error;
use crate::driver::{Driver, Tweet};

/// Our client and its benchmark database.
pub(crate) struct Ours {
    client: Client,
    db: Database,
}

impl Ours {
    /// Connects to `uri` and waits for the server to be discovered; the benchmark database is
    /// `db`.
    pub(crate) async fn connect(uri: &str, db: &str) -> Result<Self, Error> {
        let client = Client::with_uri_str(uri).await?;
        if !client.wait_for_discovery(Duration::from_secs(10)).await {
            return Err(format!("our client found no server at {uri}").into());
        }
        let db = client.database(db);
        Ok(Ours { client, db })
    }

    /// Ends the client's sessions and closes its pools.
    pub(crate) async fn shutdown(self) {
        self.client.shutdown().await;
    }

    fn coll(&self, name: &str) -> Collection {
        self.db.collection(name)
    }
}

/// Decodes one `Document` from our cursor into a [`Tweet`].
///
/// SWITCH ME: our typed `Collection<T>` is being built; when it lands, `find_many_typed` should
/// read `Tweet`s straight from a typed cursor (as the official client does) and this function
/// goes. Until then typed reading is `bson::deserialize_from_document` over the `Document` cursor, which
/// decodes each document twice (raw bytes to `Document`, `Document` to `Tweet`).
fn decode_typed(d: Document) -> Result<Tweet, Error> {
    Ok(bson::deserialize_from_document::<Tweet>(d)?)
}

impl Driver for Ours {
    fn name(&self) -> &'static str {
        "ours"
    }

    async fn drop_database(&self) -> Result<(), Error> {
        Ok(self.db.drop().await?)
    }

    async fn recreate(&self, coll: &str) -> Result<(), Error> {
        self.coll(coll).drop().await?;
        Ok(self.db.create_collection(coll, None).await?)
    }

    async fn seed(&self, coll: &str, docs: Vec<Document>) -> Result<(), Error> {
        self.coll(coll).insert_many(docs, None).await?;
        Ok(())
    }

    async fn insert_one_each(&self, coll: &str, doc: &Document, n: usize) -> Result<(), Error> {
        let coll = self.coll(coll);
        for _ in 0..n {
            // Our insert_one takes the document by value: the clone is part of the API's cost.
            coll.insert_one(doc.clone(), None).await?;
        }
        Ok(())
    }

    async fn insert_many(&self, coll: &str, docs: Vec<Document>) -> Result<(), Error> {
        let n = docs.len();
        let r = self.coll(coll).insert_many(docs, None).await?;
        crate::check_count("insert_many", r.inserted_ids.len(), n)
    }

    async fn find_one_by_id(&self, coll: &str, n: i32) -> Result<(), Error> {
        let coll = self.coll(coll);
        for id in 1..=n {
            if coll.find_one(doc! {"_id": id}, None).await?.is_none() {
                return Err(format!("find_one: no document with _id {id}").into());
            }
        }
        Ok(())
    }

    async fn find_many(&self, coll: &str) -> Result<usize, Error> {
        let mut cursor = self.coll(coll).find(doc! {}, None).await?;
        let mut n = 0;
        while let Some(d) = cursor.try_next().await? {
            std::hint::black_box(d);
            n += 1;
        }
        Ok(n)
    }

    async fn find_many_typed(&self, coll: &str) -> Result<usize, Error> {
        let mut cursor = self.coll(coll).find(doc! {}, None).await?;
        let mut n = 0;
        while let Some(d) = cursor.try_next().await? {
            std::hint::black_box(decode_typed(d)?);
            n += 1;
        }
        Ok(n)
    }

    async fn ping(&self, n: usize) -> Result<(), Error> {
        for _ in 0..n {
            self.client.run_command("admin", doc! {"ping": 1}).await?;
        }
        Ok(())
    }
}
