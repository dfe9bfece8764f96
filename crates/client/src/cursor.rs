//! [`Cursor`]: a batch from `find` / `aggregate`, then `getMore`s on the same server (on the
//! same connection in load-balanced mode); killed (`killCursors`) when dropped unfinished.

use std::collections::VecDeque;

use bson::{Bson, Document, doc};
use mongo_events::ServerAddress;

use crate::client::{Client, Op, OpKind};
use crate::error::{BsonExt, Error, Result};
use crate::topology::PooledConn;

/// A server-side cursor.
pub struct Cursor {
    client: Client,
    db: String,
    coll: String,
    id: i64,
    /// The id as the server sent it (some servers use int32 ids and want them back so).
    id_bson: Bson,
    buffer: VecDeque<Document>,
    batch_size: Option<i32>,
    address: ServerAddress,
    pinned: Option<PooledConn>,
}

impl std::fmt::Debug for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cursor")
            .field("ns", &format!("{}.{}", self.db, self.coll))
            .field("id", &self.id)
            .field("buffered", &self.buffer.len())
            .field("address", &self.address)
            .field("pinned", &self.pinned.is_some())
            .finish()
    }
}

type Batch = (i64, Bson, String, VecDeque<Document>);

/// Takes the cursor id, namespace and batch (`key`) out of a cursor reply, moving the
/// documents rather than copying them.
fn parse_batch(mut reply: Document, key: &str) -> Result<Batch> {
    let Some(Bson::Document(mut cursor)) = reply.remove("cursor") else {
        return Err(Error::invalid_reply("reply has no cursor document"));
    };
    let id_bson = cursor.remove("id").unwrap_or(Bson::Null);
    let id = id_bson
        .as_i64_lossy()
        .ok_or_else(|| Error::invalid_reply("cursor has no id"))?;
    let ns = match cursor.remove("ns") {
        Some(Bson::String(ns)) => ns,
        _ => String::new(),
    };
    let batch = match cursor.remove(key) {
        Some(Bson::Array(a)) => a
            .into_iter()
            .map(|d| match d {
                Bson::Document(d) => Ok(d),
                _ => Err(Error::invalid_reply("a batch entry is not a document")),
            })
            .collect::<Result<VecDeque<_>>>()?,
        _ => VecDeque::new(),
    };
    Ok((id, id_bson, ns, batch))
}

impl Cursor {
    pub(crate) fn new(
        client: Client,
        db: &str,
        coll: &str,
        reply: Document,
        address: ServerAddress,
        pinned: Option<PooledConn>,
        batch_size: Option<i32>,
    ) -> Result<Cursor> {
        let (id, id_bson, ns, buffer) = parse_batch(reply, "firstBatch")?;
        let (db, coll) = match ns.split_once('.') {
            Some((d, c)) if !d.is_empty() && !c.is_empty() => (d.to_owned(), c.to_owned()),
            _ => (db.to_owned(), coll.to_owned()),
        };
        // A pinned connection is only kept while the cursor is open.
        let pinned = if id == 0 { None } else { pinned };
        Ok(Cursor {
            client,
            db,
            coll,
            id,
            id_bson,
            buffer,
            batch_size,
            address,
            pinned,
        })
    }

    /// The server's cursor id (0 once exhausted).
    pub fn id(&self) -> i64 {
        self.id
    }

    /// The server the cursor lives on.
    pub fn address(&self) -> &ServerAddress {
        &self.address
    }

    /// Whether the cursor holds a pinned connection (load-balanced mode).
    pub fn is_pinned(&self) -> bool {
        self.pinned.is_some()
    }

    /// The next document, running `getMore` when the batch is used up; `None` at the end.
    ///
    /// # Errors
    /// Network and command errors of `getMore`.
    pub async fn try_next(&mut self) -> Result<Option<Document>> {
        loop {
            if let Some(d) = self.buffer.pop_front() {
                return Ok(Some(d));
            }
            if self.id == 0 {
                self.pinned = None;
                return Ok(None);
            }
            self.get_more().await?;
        }
    }

    /// Every remaining document.
    ///
    /// # Errors
    /// As [`try_next`](Self::try_next).
    pub async fn collect_all(mut self) -> Result<Vec<Document>> {
        let mut out = Vec::new();
        while let Some(d) = self.try_next().await? {
            out.push(d);
        }
        Ok(out)
    }

    async fn get_more(&mut self) -> Result<()> {
        let mut cmd = doc! { "getMore": self.id_bson.clone(), "collection": self.coll.clone() };
        if let Some(b) = self.batch_size {
            cmd.insert("batchSize", b);
        }
        let op = Op {
            db: self.db.clone(),
            cmd,
            sequence: None,
            kind: OpKind::Read,
            acknowledged: true,
        };
        let result = match self.pinned.as_mut() {
            Some(conn) => self.client.execute(&op, Some(conn), false).await,
            None => {
                let mut conn = self.client.topology().checkout_at(&self.address).await?;
                self.client.execute(&op, Some(&mut conn), false).await
            }
        };
        match result {
            Ok(executed) => {
                let (id, id_bson, _, batch) = parse_batch(executed.reply, "nextBatch")?;
                self.id = id;
                self.id_bson = id_bson;
                self.buffer = batch;
                if id == 0 {
                    self.pinned = None;
                }
                Ok(())
            }
            Err(e) => {
                if e.is_network_error() {
                    // The cursor died with its connection.
                    self.id = 0;
                    self.pinned = None;
                }
                Err(e)
            }
        }
    }
}

impl Drop for Cursor {
    fn drop(&mut self) {
        if self.id == 0 {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let client = self.client.clone();
        let (db, coll, id, address) = (
            self.db.clone(),
            self.coll.clone(),
            self.id_bson.clone(),
            self.address.clone(),
        );
        let pinned = self.pinned.take();
        runtime.spawn(async move {
            let cmd = doc! { "killCursors": coll, "cursors": [id] };
            let mut conn = match pinned {
                Some(c) => c,
                None => match client.topology().checkout_at(&address).await {
                    Ok(c) => c,
                    Err(_) => return,
                },
            };
            let _ = conn.command(&db, cmd).await;
        });
    }
}
