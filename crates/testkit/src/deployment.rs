//! Whole deployments in one call: a standalone, a replica set, a sharded cluster's mongos
//! routers or load-balanced mongoses behind an in-process TCP balancer, with what a test
//! runner needs to drive them (URIs, per-node fail points, the shared data, a reset between
//! tests).

use std::sync::Arc;

use bson::{Bson, Document};

use crate::error::Error;
use crate::lb::LbProxy;
use crate::node::Node;
use crate::options::ServerOptions;
use crate::replset::ReplicaSet;
use crate::scram::Users;
use crate::server::{TestServer, bind};
use crate::store::Store;
use crate::topology::Topology;

/// Which topology [`Deployment::start`] builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeploymentKind {
    /// One standalone mongod.
    Single,
    /// A replica set named `rs0` with this many members (member 0 starts as primary).
    ReplicaSet {
        /// Number of members (at least 1).
        members: usize,
    },
    /// A sharded cluster as a client sees it: this many mongos routers (at least 1; the
    /// unified suites want 2) in front of one shared store.
    Sharded {
        /// Number of mongos routers.
        routers: usize,
    },
    /// Two mongos routers in load-balancer mode, reached through in-process TCP balancers:
    /// one in front of router 0 only ([`Deployment::single_mongos_uri`]) and one that
    /// round-robins connections over both ([`Deployment::uri`]).
    LoadBalanced,
}

/// A running deployment. Cloning gives another handle to the same deployment; when the last
/// handle is dropped every node and balancer stops.
#[derive(Debug, Clone)]
pub struct Deployment {
    kind: DeploymentKind,
    version: String,
    tls: bool,
    servers: Vec<TestServer>,
    replica_set: Option<ReplicaSet>,
    lb_single: Option<Arc<LbProxy>>,
    lb_multi: Option<Arc<LbProxy>>,
    store: Arc<Store>,
}

/// Name of the replica set [`DeploymentKind::ReplicaSet`] starts.
pub const REPLICA_SET_NAME: &str = "rs0";

impl Deployment {
    /// Starts a deployment of `kind`; every node gets `options` (users, TLS, compressors,
    /// version, parameters). `options.port`, when non-zero, is the first of consecutive ports.
    ///
    /// # Errors
    /// Zero members / routers, or a bind / TLS failure.
    pub async fn start(kind: DeploymentKind, options: ServerOptions) -> Result<Self, Error> {
        let version = options.version.clone();
        let tls = options.tls.is_some();
        let host = options.host.clone();
        let mut deployment = Self {
            kind,
            version,
            tls,
            servers: Vec::new(),
            replica_set: None,
            lb_single: None,
            lb_multi: None,
            store: Arc::new(Store::new()),
        };
        match kind {
            DeploymentKind::Single => {
                let mut options = options;
                options.load_balancer = false;
                let server = TestServer::start(options).await?;
                deployment.store = server.store();
                deployment.servers.push(server);
            }
            DeploymentKind::ReplicaSet { members } => {
                let mut options = options;
                options.load_balancer = false;
                let rs = ReplicaSet::start_with(REPLICA_SET_NAME, members, options).await?;
                deployment.store = rs.store();
                deployment.servers = rs.members().to_vec();
                deployment.replica_set = Some(rs);
            }
            DeploymentKind::Sharded { routers } => {
                let mut options = options;
                options.load_balancer = false;
                deployment.servers =
                    start_routers(routers, &options, deployment.store.clone()).await?;
            }
            DeploymentKind::LoadBalanced => {
                let mut options = options;
                options.load_balancer = true;
                deployment.servers = start_routers(2, &options, deployment.store.clone()).await?;
                let addrs: Vec<_> = deployment.servers.iter().map(TestServer::address).collect();
                let first = addrs.first().copied().into_iter().collect();
                deployment.lb_single = Some(Arc::new(LbProxy::start(&host, first).await?));
                deployment.lb_multi = Some(Arc::new(LbProxy::start(&host, addrs).await?));
            }
        }
        Ok(deployment)
    }

    /// The kind this deployment was started as.
    pub fn kind(&self) -> DeploymentKind {
        self.kind
    }

    /// The unified test format's name of the topology: `"single"`, `"replicaset"`,
    /// `"sharded"` or `"load-balanced"`.
    pub fn topology_name(&self) -> &'static str {
        match self.kind {
            DeploymentKind::Single => "single",
            DeploymentKind::ReplicaSet { .. } => "replicaset",
            DeploymentKind::Sharded { .. } => "sharded",
            DeploymentKind::LoadBalanced => "load-balanced",
        }
    }

    /// The server version every node reports (buildInfo `version`), e.g. `"8.0.4"`.
    pub fn server_version(&self) -> &str {
        &self.version
    }

    fn tls_suffix(&self, first: bool) -> &'static str {
        match (self.tls, first) {
            (false, _) => "",
            (true, true) => "?tls=true",
            (true, false) => "&tls=true",
        }
    }

    /// A connection string that reaches every node (`useMultipleMongoses: true`): the
    /// standalone; all replica-set members with `replicaSet=rs0`; every mongos; or, load
    /// balanced, the balancer in front of both mongoses with `loadBalanced=true`.
    pub fn uri(&self) -> String {
        match self.kind {
            DeploymentKind::ReplicaSet { .. } => match &self.replica_set {
                Some(rs) => rs.uri(),
                None => String::new(),
            },
            DeploymentKind::LoadBalanced => self.lb_uri(self.lb_multi.as_deref()),
            DeploymentKind::Single | DeploymentKind::Sharded { .. } => {
                format!(
                    "mongodb://{}/{}",
                    self.hosts().join(","),
                    self.tls_suffix(true)
                )
            }
        }
    }

    /// A connection string for one mongos (`useMultipleMongoses: false`): router 0 when
    /// sharded; the balancer in front of router 0 only when load balanced; the same as
    /// [`Deployment::uri`] for a standalone or a replica set.
    pub fn single_mongos_uri(&self) -> String {
        match self.kind {
            DeploymentKind::Sharded { .. } => match self.servers.first() {
                Some(s) => format!("mongodb://{}/{}", s.host_port(), self.tls_suffix(true)),
                None => String::new(),
            },
            DeploymentKind::LoadBalanced => self.lb_uri(self.lb_single.as_deref()),
            DeploymentKind::Single | DeploymentKind::ReplicaSet { .. } => self.uri(),
        }
    }

    fn lb_uri(&self, lb: Option<&LbProxy>) -> String {
        match lb {
            Some(lb) => format!(
                "mongodb://{}/?loadBalanced=true{}",
                lb.host_port(),
                self.tls_suffix(false)
            ),
            None => String::new(),
        }
    }

    /// Connections the load balancers accepted so far (single, multi); zeros when not
    /// load balanced.
    pub fn load_balancer_connections(&self) -> (usize, usize) {
        (
            self.lb_single
                .as_ref()
                .map_or(0, |l| l.connections_accepted()),
            self.lb_multi
                .as_ref()
                .map_or(0, |l| l.connections_accepted()),
        )
    }

    /// Every node: the standalone, the replica-set members (by index) or the mongos routers
    /// (also when load balanced). Each has its own fail points, cursors and connections.
    pub fn servers(&self) -> &[TestServer] {
        &self.servers
    }

    /// `HOST:PORT` of every node, in [`Deployment::servers`] order.
    pub fn hosts(&self) -> Vec<String> {
        self.servers.iter().map(TestServer::host_port).collect()
    }

    /// The node listening on `host_port` (as hello's `me` / the driver's server address
    /// names it; `localhost` is taken as `127.0.0.1`).
    pub fn server(&self, host_port: &str) -> Option<&TestServer> {
        let normalized = host_port.replacen("localhost:", "127.0.0.1:", 1);
        self.servers
            .iter()
            .find(|s| s.host_port() == host_port || s.host_port() == normalized)
    }

    /// The replica set, when this is one.
    pub fn replica_set(&self) -> Option<&ReplicaSet> {
        self.replica_set.as_ref()
    }

    /// The node the unified format's `failPoint` operation reaches: the current primary of a
    /// replica set, the standalone, or router 0 (the one a `useMultipleMongoses: false`
    /// client uses, also behind the single-mongos balancer).
    pub fn fail_point_target(&self) -> Option<&TestServer> {
        match &self.replica_set {
            Some(rs) => rs.primary(),
            None => self.servers.first(),
        }
    }

    /// Runs a `configureFailPoint` command (the whole document, e.g. from a test file) on the
    /// [`Deployment::fail_point_target`]. A fail point is per process, as on mongod: the other
    /// nodes are untouched.
    ///
    /// # Errors
    /// The server's error reply, as a document (unknown fail point, bad mode or data; no
    /// primary).
    pub fn configure_fail_point(&self, cmd: Document) -> Result<Document, Document> {
        match self.fail_point_target() {
            Some(s) => s.run_configure_fail_point(&cmd),
            None => Err(no_such_node("no primary to configure the fail point on")),
        }
    }

    /// Runs a `configureFailPoint` command on the node at `host_port` (`targetedFailPoint`).
    ///
    /// # Errors
    /// The server's error reply, or an error document when no node listens on `host_port`.
    pub fn configure_fail_point_on(
        &self,
        host_port: &str,
        cmd: Document,
    ) -> Result<Document, Document> {
        match self.server(host_port) {
            Some(s) => s.run_configure_fail_point(&cmd),
            None => Err(no_such_node(&format!(
                "no node of this deployment listens on {host_port}"
            ))),
        }
    }

    /// Turns off every fail point on every node.
    pub fn clear_fail_points(&self) {
        for s in &self.servers {
            s.clear_fail_points();
        }
    }

    /// The data shared by every node, for `initialData` and `outcome` checks.
    pub fn store(&self) -> Arc<Store> {
        self.store.clone()
    }

    /// A server parameter as `getParameter` on node 0 reports it (defaults, then startup
    /// options, then `setParameter`).
    pub fn server_parameter(&self, name: &str) -> Option<Bson> {
        self.servers.first().and_then(|s| s.node().parameter(name))
    }

    /// Between tests: drops every database (users stay: they are not stored as data), turns
    /// off every fail point, kills every cursor and forgets the session state (retryable
    /// write records), lifts replica-set freezes. Roles stay as they are (a stepped-down
    /// primary stays a secondary, as on a real replica set).
    pub fn reset(&self) {
        self.store.clear();
        for s in &self.servers {
            s.clear_fail_points();
            s.node().kill_all_cursors();
        }
        if let Some(rs) = &self.replica_set {
            rs.unfreeze_all();
        }
    }

    /// Stops every node and balancer (idempotent).
    pub async fn stop(&self) {
        for lb in [&self.lb_single, &self.lb_multi].into_iter().flatten() {
            lb.stop().await;
        }
        for s in &self.servers {
            s.stop().await;
        }
    }
}

fn no_such_node(msg: &str) -> Document {
    crate::error::CommandError::bad_value(msg).to_doc()
}

/// Starts `n` mongos routers that share `store` and one user table; each is its own process
/// (topology counter, fail points, cursors, serviceId).
async fn start_routers(
    n: usize,
    options: &ServerOptions,
    store: Arc<Store>,
) -> Result<Vec<TestServer>, Error> {
    if n == 0 {
        return Err(Error::InvalidOptions(
            "a sharded cluster needs at least one mongos".into(),
        ));
    }
    let users = Arc::new(Users::default());
    for (u, p) in &options.users {
        users.add("admin", u, p);
    }
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let port = if options.port == 0 {
            0
        } else {
            u16::try_from(i)
                .ok()
                .and_then(|i| options.port.checked_add(i))
                .ok_or_else(|| Error::InvalidOptions("port out of range".into()))?
        };
        let listener = bind(&options.host, port).await?;
        let node = Arc::new(Node::new(
            options.clone(),
            store.clone(),
            users.clone(),
            Arc::new(Topology::mongos()),
            0,
        ));
        out.push(TestServer::launch(node, listener).await?);
    }
    Ok(out)
}
