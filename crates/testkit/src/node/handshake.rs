//! The handshake: hello / isMaster (roles, replica-set fields, load-balancer `serviceId`,
//! compression negotiation, `saslSupportedMechs` and speculative authentication) and
//! buildInfo.

use bson::{Bson, Document, doc};

use super::args::{name_of, now, ok, opt_doc};
use super::{ConnState, MAX_BSON_OBJECT_SIZE, MAX_WRITE_BATCH_SIZE, Node};
use crate::error::{CmdResult, CommandError};
use crate::query;
use crate::topology::Role;

impl Node {
    pub(super) fn build_info(&self) -> Document {
        let parts: Vec<Bson> = self
            .opts
            .version
            .split('.')
            .map(|p| Bson::Int32(p.parse().unwrap_or(0)))
            .chain(std::iter::once(Bson::Int32(0)))
            .take(4)
            .collect();
        ok(doc! {
            "version": self.opts.version.clone(),
            "gitVersion": "mongo-testkit",
            "versionArray": parts,
            "bits": 64,
            "debug": false,
            "maxBsonObjectSize": MAX_BSON_OBJECT_SIZE,
            "storageEngines": ["memory"],
        })
    }

    /// The hello / isMaster reply.
    pub(super) fn hello(
        &self,
        _db: &str,
        cmd: &Document,
        conn: &mut ConnState,
    ) -> CmdResult<Document> {
        let name = name_of(cmd);
        if let Some(client) = opt_doc(cmd, "client")? {
            if conn.handshake_done {
                return Err(CommandError::new(
                    186,
                    "ClientMetadataCannotBeMutated",
                    "The client metadata document may only be sent in the first hello",
                ));
            }
            conn.app_name = client
                .get_document("application")
                .ok()
                .and_then(|a| a.get_str("name").ok())
                .map(String::from);
        }
        let role = self.topology.role(self.member);
        let writable = role != Role::Secondary;
        let mut r = Document::new();
        if cmd.get("helloOk").is_some_and(query::truthy) {
            r.insert("helloOk", true);
        }
        if name == "hello" {
            r.insert("isWritablePrimary", writable);
        } else {
            r.insert("ismaster", writable);
        }
        r.insert("topologyVersion", self.topology_version());
        if let Some(rs) = self.topology.rs() {
            r.insert("setName", rs.name.clone());
            r.insert("setVersion", rs.set_version);
            r.insert("secondary", role == Role::Secondary);
            r.insert(
                "hosts",
                rs.hosts
                    .iter()
                    .cloned()
                    .map(Bson::String)
                    .collect::<Vec<_>>(),
            );
            if let Some(p) = rs.primary.and_then(|p| rs.hosts.get(p)) {
                r.insert("primary", p.clone());
            }
            if let Some(me) = rs.hosts.get(self.member) {
                r.insert("me", me.clone());
            }
            if role == Role::Primary {
                r.insert("electionId", rs.election_id());
            }
            r.insert("lastWrite", crate::replication::last_write(self, rs.term));
        }
        if role == Role::Mongos {
            r.insert("msg", "isdbgrid");
        }
        if self.opts.load_balancer && cmd.get("loadBalanced").is_some_and(query::truthy) {
            r.insert("serviceId", *self.service_id.lock());
        }
        r.insert("maxBsonObjectSize", MAX_BSON_OBJECT_SIZE);
        r.insert(
            "maxMessageSizeBytes",
            i32::try_from(self.opts.max_message_size).unwrap_or(i32::MAX),
        );
        r.insert("maxWriteBatchSize", MAX_WRITE_BATCH_SIZE);
        r.insert("localTime", now());
        if self.opts.sessions {
            r.insert("logicalSessionTimeoutMinutes", 30);
        }
        r.insert("connectionId", conn.id);
        r.insert("minWireVersion", 0);
        r.insert("maxWireVersion", self.opts.max_wire_version);
        r.insert("readOnly", false);
        if let Some(Bson::Array(requested)) = cmd.get("compression") {
            let chosen: Vec<String> = requested
                .iter()
                .filter_map(|c| c.as_str())
                .filter(|c| self.opts.compressors.iter().any(|s| s == c))
                .map(String::from)
                .collect();
            if !conn.handshake_done {
                conn.compressors.clone_from(&chosen);
            }
            r.insert(
                "compression",
                chosen.into_iter().map(Bson::String).collect::<Vec<_>>(),
            );
        }
        if let Ok(who) = cmd.get_str("saslSupportedMechs") {
            if let Some((db, user)) = who.split_once('.') {
                if self.users.exists(db, user) {
                    r.insert("saslSupportedMechs", vec!["SCRAM-SHA-1", "SCRAM-SHA-256"]);
                }
            }
        }
        if let Some(spec) = opt_doc(cmd, "speculativeAuthenticate")? {
            let db = spec.get_str("db").unwrap_or("admin").to_string();
            // A failed speculative attempt is not an error: the reply just omits the field
            // and the client falls back to a full conversation.
            let attempt = if spec.contains_key("authenticate") {
                self.authenticate(&db, spec, conn)
            } else {
                self.sasl_start(&db, spec, conn)
            };
            if let Ok(reply) = attempt {
                let mut reply = reply;
                reply.remove("ok");
                r.insert("speculativeAuthenticate", reply);
            }
        }
        conn.handshake_done = true;
        Ok(ok(r))
    }
}
