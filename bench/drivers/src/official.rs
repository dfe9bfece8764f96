//! The official `mongodb` crate behind [`Driver`], used as its documentation shows: typed
//! `Collection<T>` handles, the action builders awaited directly, cursors read with
//! `advance` / `deserialize_current` (what its `Stream` implementation does per item, without
//! the `futures` dependency).

use bson::{Document, doc};
use mongodb::{Client, Collection, Database};

use crate::Error;
use crate::driver::{Driver, Tweet};

/// The official client and its benchmark database.
pub(crate) struct Official {
    client: Client,
    db: Database,
}

impl Official {
    /// Connects to `uri` and checks the server answers; the benchmark database is `db`.
    pub(crate) async fn connect(uri: &str, db: &str) -> Result<Self, Error> {
        let client = Client::with_uri_str(uri).await?;
        client
            .database("admin")
            .run_command(doc! {"ping": 1})
            .await?;
        let db = client.database(db);
        Ok(Official { client, db })
    }

    /// Ends the client's sessions and closes its pools.
    pub(crate) async fn shutdown(self) {
        self.client.shutdown().await;
    }

    fn coll(&self, name: &str) -> Collection<Document> {
        self.db.collection(name)
    }
}

impl Driver for Official {
    fn name(&self) -> &'static str {
        "official"
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
        // By value, as ours takes them: both drop the documents inside the timed task.
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
        while cursor.advance().await? {
            std::hint::black_box(cursor.deserialize_current()?);
            n += 1;
        }
        Ok(n)
    }

    async fn find_many_typed(&self, coll: &str) -> Result<usize, Error> {
        let typed: Collection<Tweet> = self.db.collection(coll);
        let mut cursor = typed.find(doc! {}).await?;
        let mut n = 0;
        while cursor.advance().await? {
            std::hint::black_box(cursor.deserialize_current()?);
            n += 1;
        }
        Ok(n)
    }

    async fn ping(&self, n: usize) -> Result<(), Error> {
        let admin = self.client.database("admin");
        for _ in 0..n {
            admin.run_command(doc! {"ping": 1}).await?;
        }
        Ok(())
    }
}
