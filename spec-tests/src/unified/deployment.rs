//! The deployments tests run against: testkit deployments started in-process on demand (a
//! standalone, a 3-member replica set, a sharded cluster of 2 mongos routers, a load-balanced
//! pair of mongoses), each with and without authentication, plus the internal client that
//! sets up `initialData` and reads `outcome`.

use bson::{Document, doc};
use mongo_client::{Client, ClientOptions};
use mongo_testkit::{Deployment, DeploymentKind, ServerOptions};

use super::Fail;
use super::file::{ServerFacts, parse_version};

/// The user of the authenticated deployments.
const USER: (&str, &str) = ("unified", "unified-password");

/// One running deployment and what the runner knows of it.
pub(crate) struct Env {
    pub(crate) deployment: Deployment,
    pub(crate) internal: Client,
    pub(crate) facts: ServerFacts,
    auth: bool,
}

impl Env {
    /// The URI a client entity starts from (`useMultipleMongoses` as given).
    pub(crate) fn uri_for(&self, multiple: Option<bool>) -> Result<String, Fail> {
        let uri = match (self.facts.topology, multiple) {
            ("sharded" | "load-balanced", Some(false)) => self.deployment.single_mongos_uri(),
            _ => self.deployment.uri(),
        };
        Ok(with_credentials(self.auth, uri))
    }
}

/// The kinds of deployment, in the order a test is offered them.
const KINDS: [(DeploymentKind, bool); 8] = [
    (DeploymentKind::Single, false),
    (DeploymentKind::ReplicaSet { members: 3 }, false),
    (DeploymentKind::Sharded { routers: 2 }, false),
    (DeploymentKind::LoadBalanced, false),
    (DeploymentKind::Single, true),
    (DeploymentKind::ReplicaSet { members: 3 }, true),
    (DeploymentKind::Sharded { routers: 2 }, true),
    (DeploymentKind::LoadBalanced, true),
];

fn topology_name(kind: DeploymentKind) -> &'static str {
    match kind {
        DeploymentKind::Single => "single",
        DeploymentKind::ReplicaSet { .. } => "replicaset",
        DeploymentKind::Sharded { .. } => "sharded",
        _ => "load-balanced",
    }
}

/// Deployments started so far (each at most once per run).
#[derive(Default)]
pub(crate) struct Deployments {
    started: Vec<Option<std::sync::Arc<Env>>>,
}

impl Deployments {
    /// The first deployment that satisfies both requirement lists, started if needed; `None`
    /// when no deployment the testkit offers satisfies them.
    pub(crate) async fn pick(
        &mut self,
        file_reqs: &[Document],
        test_reqs: &[Document],
    ) -> Result<Option<std::sync::Arc<Env>>, Fail> {
        if self.started.is_empty() {
            self.started = vec![None; KINDS.len()];
        }
        let predicted_version = parse_version(&ServerOptions::default().version);
        // `UNIFIED_TOPOLOGIES=sharded,replicaset` offers only those kinds (to run a suite on
        // another topology than the first its requirements allow).
        let only = std::env::var("UNIFIED_TOPOLOGIES").ok();
        for (i, (kind, auth)) in KINDS.iter().enumerate() {
            if let Some(only) = &only
                && !only.split(',').any(|t| t.trim() == topology_name(*kind))
            {
                continue;
            }
            // Decide on what the deployment will be before starting it...
            let predicted = ServerFacts {
                version: predicted_version.clone(),
                topology: topology_name(*kind),
                auth: *auth,
                parameters: doc! {},
            };
            let without_params = |reqs: &[Document]| -> Result<bool, Fail> {
                let stripped: Vec<Document> = reqs
                    .iter()
                    .map(|r| {
                        let mut r = r.clone();
                        r.remove("serverParameters");
                        r
                    })
                    .collect();
                super::file::any_met(&stripped, &predicted).map_err(Fail::runner)
            };
            if !without_params(file_reqs)? || !without_params(test_reqs)? {
                continue;
            }
            // ...then check everything against the real one.
            let env = match &self.started[i] {
                Some(env) => env.clone(),
                None => {
                    let env = std::sync::Arc::new(start(*kind, *auth).await?);
                    self.started[i] = Some(env.clone());
                    env
                }
            };
            let facts = &env.facts;
            if super::file::any_met(file_reqs, facts).map_err(Fail::runner)?
                && super::file::any_met(test_reqs, facts).map_err(Fail::runner)?
            {
                return Ok(Some(env));
            }
        }
        Ok(None)
    }

    /// Stops every deployment.
    pub(crate) async fn stop(&mut self) {
        for env in self.started.drain(..).flatten() {
            env.internal.shutdown().await;
            env.deployment.stop().await;
        }
    }
}

async fn start(kind: DeploymentKind, auth: bool) -> Result<Env, Fail> {
    let mut options = ServerOptions::default();
    if auth {
        options = options.with_user(USER.0, USER.1);
    }
    let deployment = Deployment::start(kind, options)
        .await
        .map_err(|e| Fail::runner(format!("cannot start a {kind:?} deployment: {e}")))?;
    let uri = with_credentials(auth, deployment.single_mongos_uri());
    let options = ClientOptions::parse(&uri).map_err(|e| Fail::runner(format!("{uri}: {e}")))?;
    let internal = Client::with_options(options)
        .await
        .map_err(|e| Fail::runner(format!("internal client: {e}")))?;
    let build = internal
        .run_command("admin", doc! {"buildInfo": 1})
        .await
        .map_err(|e| Fail::runner(format!("buildInfo: {e}")))?;
    let mut parameters = internal
        .run_command("admin", doc! {"getParameter": "*"})
        .await
        .map_err(|e| Fail::runner(format!("getParameter: {e}")))?;
    parameters.remove("ok");
    Ok(Env {
        facts: ServerFacts {
            version: parse_version(build.get_str("version").unwrap_or("0.0.0")),
            topology: topology_name(kind),
            auth,
            parameters,
        },
        internal,
        deployment,
        auth,
    })
}

fn with_credentials(auth: bool, uri: String) -> String {
    if auth {
        uri.replacen(
            "mongodb://",
            &format!("mongodb://{}:{}@", USER.0, USER.1),
            1,
        )
    } else {
        uri
    }
}
