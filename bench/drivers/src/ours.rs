//! OUR client (`mongo-client`) behind [`Driver`]. Every call into our API lives in this
//! module.

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

impl Driver for Ours {
    fn name(&self) -> &'static str {
        "ours"
    }

    async fn drop_database(&self) -> Result<(), Error> {
        Ok(self.db.drop().await?)
    }

    async fn recreate(&self, coll: &str) -> Result<(), Error> {
        self.coll(coll).drop().await?;
        Ok(self.db.create_collection(coll).await?)
    }

    async fn seed(&self, coll: &str, docs: Vec<Document>) -> Result<(), Error> {
        self.coll(coll).insert_many(docs).await?;
        Ok(())
    }

    async fn insert_one_each(&self, coll: &str, doc: &Document, n: usize) -> Result<(), Error> {
        let coll = self.coll(coll);
        for _ in 0..n {
            coll.insert_one(doc).await?;
        }
        Ok(())
    }

    async fn insert_many(&self, coll: &str, docs: Vec<Document>) -> Result<(), Error> {
        let n = docs.len();
        let r = self.coll(coll).insert_many(docs).await?;
        crate::check_count("insert_many", r.inserted_ids.len(), n)
    }

    async fn find_one_by_id(&self, coll: &str, n: i32) -> Result<(), Error> {
        let coll = self.coll(coll);
        for id in 1..=n {
            if coll.find_one(doc! {"_id": id}).await?.is_none() {
                return Err(format!("find_one: no document with _id {id}").into());
            }
        }
        Ok(())
    }

    async fn find_many(&self, coll: &str) -> Result<usize, Error> {
        let mut cursor = self.coll(coll).find(doc! {}).await?;
        let mut n = 0;
        while let Some(d) = cursor.try_next().await? {
            std::hint::black_box(d);
            n += 1;
        }
        Ok(n)
    }

    async fn find_many_typed(&self, coll: &str) -> Result<usize, Error> {
        // A typed collection: each document decodes into a `Tweet` as the cursor yields it.
        let mut cursor = self
            .db
            .collection::<Tweet>(coll)
            .find(doc! {})
            .await?;
        let mut n = 0;
        while let Some(t) = cursor.try_next().await? {
            std::hint::black_box(t);
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
