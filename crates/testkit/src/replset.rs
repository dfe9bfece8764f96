//! Replica sets: N members on N ports with primary / secondary roles; the secondaries keep
//! their own data, applied from the primary's replication log (`replication/`).

use std::sync::Arc;

use bson::Document;

use crate::error::Error;
use crate::node::Node;
use crate::options::ServerOptions;
use crate::scram::Users;
use crate::server::{TestServer, bind};
use crate::store::Store;
use crate::topology::Topology;

/// A running replica set. Member 0 starts as primary. Writes go to the primary's data (the
/// [`ReplicaSet::store`]); each secondary applies them to its own copy
/// [`ServerOptions::replication_lag`] later (by default at once, before the write is
/// acknowledged).
#[derive(Debug, Clone)]
pub struct ReplicaSet {
    name: String,
    members: Vec<TestServer>,
    topology: Arc<Topology>,
}

impl ReplicaSet {
    /// Starts `members` members named `name` on ephemeral loopback ports.
    ///
    /// # Errors
    /// Zero members, or a bind / TLS failure.
    pub async fn start(name: &str, members: usize) -> Result<Self, Error> {
        Self::start_with(name, members, ServerOptions::default()).await
    }

    /// Starts a replica set with the given per-member options (users, TLS, compressors...).
    /// When `options.port` is non-zero, members use `port`, `port + 1`, ...
    ///
    /// # Errors
    /// Zero members, or a bind / TLS failure.
    pub async fn start_with(
        name: &str,
        members: usize,
        options: ServerOptions,
    ) -> Result<Self, Error> {
        if members == 0 {
            return Err(Error::InvalidOptions(
                "a replica set needs at least one member".into(),
            ));
        }
        let mut listeners = Vec::with_capacity(members);
        for i in 0..members {
            let port = if options.port == 0 {
                0
            } else {
                u16::try_from(i)
                    .ok()
                    .and_then(|i| options.port.checked_add(i))
                    .ok_or_else(|| Error::InvalidOptions("port out of range".into()))?
            };
            listeners.push(bind(&options.host, port).await?);
        }
        let hosts = listeners
            .iter()
            .map(|l| l.local_addr().map(|a| format!("{}:{}", a.ip(), a.port())))
            .collect::<Result<Vec<_>, _>>()?;
        let topology = Arc::new(Topology::replica_set(name, hosts));
        let store = Arc::new(Store::new());
        store
            .repl
            .configure(&store, members, options.replication_lag);
        let users = Arc::new(Users::default());
        for (u, p) in &options.users {
            users.add("admin", u, p);
        }
        let mut servers = Vec::with_capacity(members);
        for (i, l) in listeners.into_iter().enumerate() {
            let node = Arc::new(Node::new(
                options.clone(),
                store.clone(),
                users.clone(),
                topology.clone(),
                i,
            ));
            servers.push(TestServer::launch(node, l).await?);
        }
        Ok(Self {
            name: name.to_string(),
            members: servers,
            topology,
        })
    }

    /// The replica set name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// All members, by index.
    pub fn members(&self) -> &[TestServer] {
        &self.members
    }

    /// Member `i`.
    ///
    /// # Errors
    /// [`Error::NoSuchMember`].
    pub fn member(&self, i: usize) -> Result<&TestServer, Error> {
        self.members.get(i).ok_or(Error::NoSuchMember(i))
    }

    /// `HOST:PORT` of every member, in index order (the hello `hosts` list).
    pub fn hosts(&self) -> Vec<String> {
        self.members.iter().map(TestServer::host_port).collect()
    }

    /// `mongodb://h1,h2,.../?replicaSet=NAME` (plus `&tls=true` with TLS).
    pub fn uri(&self) -> String {
        let tls = if self
            .members
            .first()
            .is_some_and(|m| m.uri().contains("tls=true"))
        {
            "&tls=true"
        } else {
            ""
        };
        format!(
            "mongodb://{}/?replicaSet={}{tls}",
            self.hosts().join(","),
            self.name
        )
    }

    /// Index of the current primary.
    pub fn primary_index(&self) -> Option<usize> {
        self.topology.rs().and_then(|s| s.primary)
    }

    /// The current primary.
    pub fn primary(&self) -> Option<&TestServer> {
        self.primary_index().and_then(|i| self.members.get(i))
    }

    /// The current election term (grows with every election / step-down).
    pub fn term(&self) -> i64 {
        self.topology.rs().map(|s| s.term).unwrap_or(0)
    }

    /// Steps the primary down; the next running member becomes primary. Returns its index.
    ///
    /// # Errors
    /// [`Error::InvalidOptions`] when no other member is running.
    pub fn step_down(&self) -> Result<usize, Error> {
        let p = self
            .primary_index()
            .ok_or_else(|| Error::InvalidOptions("no primary".into()))?;
        let new = self
            .topology
            .step_down(p, std::time::Duration::ZERO)
            .map_err(|e| Error::InvalidOptions(e.errmsg))?;
        self.promote(new, Some(p));
        Ok(new)
    }

    fn promote(&self, new: usize, old: Option<usize>) {
        let store = self.store();
        store.repl.promote(&store, new, old);
    }

    /// Sets how late every secondary applies the primary's writes (see
    /// [`ServerOptions::replication_lag`]); entries already logged are due by the new lag.
    pub fn set_replication_lag(&self, lag: std::time::Duration) {
        self.store().repl.set_lag(None, lag);
    }

    /// Sets how late member `i` applies the primary's writes (a delayed member).
    ///
    /// # Errors
    /// [`Error::NoSuchMember`].
    pub fn set_member_lag(&self, i: usize, lag: std::time::Duration) -> Result<(), Error> {
        self.member(i)?;
        self.store().repl.set_lag(Some(i), lag);
        Ok(())
    }

    /// The documents of `db.coll` on member `i`, as it has them now (a secondary applies
    /// what is due first; the primary's are the store's).
    ///
    /// # Errors
    /// [`Error::NoSuchMember`].
    pub fn documents_on(&self, i: usize, db: &str, coll: &str) -> Result<Vec<Document>, Error> {
        self.member(i)?;
        let store = self.store();
        if self.primary_index() == Some(i) {
            return Ok(store.documents(db, coll));
        }
        let data = store
            .repl
            .catch_up(&store, i)
            .ok_or(Error::NoSuchMember(i))?;
        let docs = data
            .lock()
            .get(db)
            .and_then(|d| d.get(coll))
            .map(|c| c.docs.clone())
            .unwrap_or_default();
        Ok(docs)
    }

    /// Makes member `i` primary in a new term.
    ///
    /// # Errors
    /// [`Error::NoSuchMember`].
    pub fn elect(&self, i: usize) -> Result<(), Error> {
        if i >= self.members.len() {
            return Err(Error::NoSuchMember(i));
        }
        let old = self.primary_index();
        self.topology
            .elect(i)
            .map_err(|e| Error::InvalidOptions(e.errmsg))?;
        self.promote(i, old);
        Ok(())
    }

    /// Stops member `i` (closes its port and connections). Roles do not change by
    /// themselves: call [`ReplicaSet::step_down`] or [`ReplicaSet::elect`] for a failover.
    ///
    /// # Errors
    /// [`Error::NoSuchMember`].
    pub async fn stop_member(&self, i: usize) -> Result<(), Error> {
        self.member(i)?.stop().await;
        Ok(())
    }

    /// Restarts member `i` on the same port.
    ///
    /// # Errors
    /// [`Error::NoSuchMember`] or a bind failure.
    pub async fn restart_member(&self, i: usize) -> Result<(), Error> {
        self.member(i)?.restart().await
    }

    /// The primary's data (the store every member started from; a new primary's data is
    /// moved into it at an election).
    pub fn store(&self) -> Arc<Store> {
        self.members
            .first()
            .map(TestServer::store)
            .unwrap_or_default()
    }

    /// Stops every member.
    pub async fn stop(&self) {
        for m in &self.members {
            m.stop().await;
        }
    }

    /// Lifts every `replSetFreeze` / step-down freeze.
    pub fn unfreeze_all(&self) {
        self.topology.unfreeze_all();
    }

    /// Forces a topology change notification on every member (awaitable hellos answer now).
    pub fn touch(&self) {
        self.topology.touch();
    }
}

impl TestServer {
    /// Whether this member is currently primary (standalone servers are always writable).
    pub fn is_writable_primary(&self) -> bool {
        self.node().topology.role(self.node().member) != crate::topology::Role::Secondary
    }
}
