//! [`Cursor`]: a batch from `find`, `aggregate`, `listCollections`, `listIndexes` or a cursor
//! command, then `getMore`s on the same server (on the same connection in load-balanced
//! mode); killed (`killCursors`) when dropped unfinished.
//! Every command goes through the executor as an operation.
#![allow(
    clippy::disallowed_methods,
    reason = "a cursor dropped unfinished kills itself in a spawned task"
)]

use std::collections::VecDeque;

use bson::{Bson, Document};
use mongo_events::ServerAddress;

use super::Client;
use super::executor::{Executed, Route};
use crate::error::Result;
use crate::operation::{CursorReply, GetMore, GetMoreOptions, KillCursors};
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
    get_more: GetMoreOptions,
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

impl Cursor {
    /// Wraps the first batch of a cursor-opening command (`find`, `aggregate`,
    /// `listCollections`, `listIndexes`, a cursor command); its getMores carry `get_more`.
    pub(crate) fn new(
        client: &Client,
        executed: Executed<CursorReply>,
        db: &str,
        coll: &str,
        get_more: GetMoreOptions,
    ) -> Cursor {
        let reply = executed.output;
        let (db, coll) = reply.ns.unwrap_or_else(|| (db.to_owned(), coll.to_owned()));
        Cursor {
            client: client.clone(),
            db,
            coll,
            id: reply.id,
            id_bson: reply.id_bson,
            buffer: reply.batch,
            get_more,
            address: executed.address.unwrap_or_default(),
            // The executor keeps a connection only for an open cursor in load-balanced mode.
            pinned: executed.pinned,
        }
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
        let mut op = GetMore::new(
            &self.db,
            &self.coll,
            self.id_bson.clone(),
            self.get_more.clone(),
        );
        let ctx = self.client.context(Route::Server(self.address.clone()));
        let result = self
            .client
            .execute(&mut op, ctx, self.pinned.as_mut())
            .await
            .map(|e| e.output);
        match result {
            Ok(reply) => {
                self.id = reply.id;
                self.id_bson = reply.id_bson;
                self.buffer = reply.batch;
                if self.id == 0 {
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

impl Cursor {
    /// Closes the cursor now: kills it on the server (`killCursors`, best effort: an error
    /// leaves it to the server's timeout) and returns its pinned connection, before
    /// returning. Dropping a cursor does the same in the background.
    pub async fn close(mut self) {
        if self.id == 0 {
            return;
        }
        let mut op = KillCursors::new(&self.db, &self.coll, self.id_bson.clone());
        let ctx = self.client.context(Route::Server(self.address.clone()));
        let mut pinned = self.pinned.take();
        let _ = self.client.execute(&mut op, ctx, pinned.as_mut()).await;
        // Dropped without a second kill.
        self.id = 0;
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
        let mut op = KillCursors::new(&self.db, &self.coll, self.id_bson.clone());
        let ctx = client.context(Route::Server(self.address.clone()));
        let pinned = self.pinned.take();
        let span = client.inner.span.clone();
        let kill = async move {
            // killCursors is best effort: a failure leaves the cursor to the server's timeout.
            let mut pinned = pinned;
            let _ = client.execute(&mut op, ctx, pinned.as_mut()).await;
        };
        runtime.spawn(tracing::Instrument::instrument(kill, span));
    }
}
