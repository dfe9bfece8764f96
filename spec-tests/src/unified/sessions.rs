//! Session entities: created from `sessionOptions` with `Client::start_session`, the
//! `session` argument of operations ([`session_arg`]), the session operations (`endSession`,
//! `getSnapshotTime`, the transaction ones with `withTransaction` in `transactions.rs`),
//! `$$sessionLsid`, and the
//! `testRunner` assertions on a session's server session (`assertSessionDirty`,
//! `assertSessionNotDirty`).

use std::sync::Arc;
use std::time::Duration;

use bson::{Bson, Document};
use mongo_client::{ClientSession, SessionOptions, TransactionOptions};
use tracing::Instrument;

use super::Fail;
use super::entities::{Entities, Entity};
use super::ops::{OpError, Value};

/// A session entity: the session (one operation at a time holds it).
pub(crate) struct SessionEntity {
    pub(crate) session: SessionHandle,
    /// The span of the session's client: commands the session sends itself (commit, abort)
    /// are logged as the client's.
    pub(crate) span: tracing::Span,
}

/// What an operation that runs in a session holds.
pub(crate) type SessionHandle = Arc<tokio::sync::Mutex<ClientSession>>;

/// Creates a session entity (`client`, `sessionOptions`).
pub(crate) fn create(spec: &Document, entities: &Entities) -> Result<Entity, Fail> {
    for key in spec.keys() {
        if !matches!(key.as_str(), "id" | "client" | "sessionOptions") {
            return Err(Fail::runner(format!("unknown session option {key}")));
        }
    }
    let client = entities.client(
        spec.get_str("client")
            .map_err(|_| Fail::runner("session.client is required"))?,
    )?;
    let options = match spec.get("sessionOptions") {
        None => SessionOptions::default(),
        Some(Bson::Document(o)) => session_options(o, entities)?,
        Some(other) => {
            return Err(Fail::runner(format!(
                "sessionOptions must be an object, not {other}"
            )));
        }
    };
    let session = client
        .client
        .start_session(options)
        .map_err(|e| Fail::runner(format!("startSession: {e}")))?;
    Ok(Entity::Session(Arc::new(SessionEntity {
        session: Arc::new(tokio::sync::Mutex::new(session)),
        span: client.span.clone(),
    })))
}

/// The `sessionOptions` of a session entity; `snapshotTime` names a BSON entity.
fn session_options(o: &Document, entities: &Entities) -> Result<SessionOptions, Fail> {
    let mut out = SessionOptions::default();
    for (k, v) in o {
        match k.as_str() {
            "causalConsistency" => out = out.causal_consistency(flag(k, v)?),
            "snapshot" => out = out.snapshot(flag(k, v)?),
            "snapshotTime" => {
                let name = v
                    .as_str()
                    .ok_or_else(|| Fail::runner("snapshotTime names an entity"))?;
                match entities.get(name)? {
                    Entity::Bson(Bson::Timestamp(ts)) => out = out.snapshot_time(ts),
                    other => {
                        return Err(Fail::runner(format!(
                            "snapshotTime {name} is a {}, not a timestamp",
                            other.kind()
                        )));
                    }
                }
            }
            "defaultTransactionOptions" => {
                let d = v
                    .as_document()
                    .ok_or_else(|| Fail::runner("defaultTransactionOptions must be an object"))?;
                out = out.default_transaction_options(transaction_options(d)?);
            }
            "defaultTimeoutMS" => {
                out = out.default_timeout(super::entities::millis(v, "defaultTimeoutMS")?);
            }
            other => return Err(Fail::runner(format!("unknown session option {other}"))),
        }
    }
    Ok(out)
}

fn flag(key: &str, v: &Bson) -> Result<bool, Fail> {
    v.as_bool()
        .ok_or_else(|| Fail::runner(format!("{key} must be a boolean")))
}

/// `defaultTransactionOptions` (or a transaction's options): the handle options plus
/// `maxCommitTimeMS`.
pub(crate) fn transaction_options(d: &Document) -> Result<TransactionOptions, Fail> {
    let mut rest = d.clone();
    let max_commit = rest.remove("maxCommitTimeMS");
    let handle = super::entities::handle_options(&rest)?;
    let mut out = TransactionOptions::default();
    if let Some(rc) = handle.read_concern {
        out = out.read_concern(rc);
    }
    if let Some(wc) = handle.write_concern {
        out = out.write_concern(wc);
    }
    if let Some(rp) = handle.read_preference {
        out = out.read_preference(rp);
    }
    if let Some(ms) = max_commit {
        let ms = super::matching::as_f64(&ms)
            .filter(|f| f.is_finite() && *f >= 0.0)
            .ok_or_else(|| Fail::runner(format!("maxCommitTimeMS: {ms}")))?;
        out = out.max_commit_time(Duration::from_secs_f64(ms / 1000.0));
    }
    Ok(out)
}

/// The session entity an operation's `session` argument names (`None` without one). Every
/// operation arm that takes a session calls this.
pub(crate) fn session_arg(
    entities: &Entities,
    args: &Document,
) -> Result<Option<SessionHandle>, Fail> {
    let Some(v) = args.get("session") else {
        return Ok(None);
    };
    let name = v
        .as_str()
        .ok_or_else(|| Fail::runner("session must name a session entity"))?;
    Ok(Some(entity(entities, name)?.session.clone()))
}

/// The session entity `name`.
pub(crate) fn entity(entities: &Entities, name: &str) -> Result<Arc<SessionEntity>, Fail> {
    match entities.get(name)? {
        Entity::Session(s) => Ok(s),
        other => Err(Fail::runner(format!(
            "entity {name} is a {}, not a session",
            other.kind()
        ))),
    }
}

/// The lsid of the session entity `name` (`$$sessionLsid`).
pub(crate) fn lsid(entities: &Entities, name: &str) -> Result<Document, String> {
    let s = entity(entities, name).map_err(|f| f.to_string())?;
    let guard = s
        .session
        .try_lock()
        .map_err(|_| format!("$$sessionLsid {name}: the session is in use"))?;
    Ok(guard.id())
}

/// An operation on a session entity.
pub(crate) async fn session_op(
    state: &super::runner::State,
    s: &SessionEntity,
    name: &str,
    args: &Document,
) -> Result<Value, OpError> {
    match name {
        "endSession" => {
            super::ops::allow(name, args, &[])?;
            s.session
                .lock()
                .await
                .end_session_async()
                .instrument(s.span.clone())
                .await;
            Ok(Value::None)
        }
        "getSnapshotTime" => {
            super::ops::allow(name, args, &[])?;
            match s.session.lock().await.snapshot_time()? {
                Some(ts) => Ok(Value::Bson(Bson::Timestamp(ts))),
                None => {
                    Err(Fail::runner("getSnapshotTime: the session has no snapshot time").into())
                }
            }
        }
        "startTransaction" => {
            let options = transaction_options(args)?;
            s.session.lock().await.start_transaction(options)?;
            Ok(Value::None)
        }
        "commitTransaction" => {
            super::ops::allow(name, args, &[])?;
            let timeout = super::ops::op_timeout(args)?;
            s.session
                .lock()
                .await
                .commit_transaction_within(timeout)
                .instrument(s.span.clone())
                .await?;
            Ok(Value::None)
        }
        "abortTransaction" => {
            super::ops::allow(name, args, &[])?;
            let timeout = super::ops::op_timeout(args)?;
            s.session
                .lock()
                .await
                .abort_transaction_within(timeout)
                .instrument(s.span.clone())
                .await?;
            Ok(Value::None)
        }
        "withTransaction" => {
            super::transactions::with_transaction(state, s, args)
                .instrument(s.span.clone())
                .await
        }
        other => Err(Fail::unsupported(format!("session.{other}")).into()),
    }
}

/// `assertSessionDirty` / `assertSessionNotDirty`.
pub(crate) async fn assert_dirty(
    entities: &Entities,
    args: &Document,
    want: bool,
) -> Result<(), Fail> {
    let name = args
        .get_str("session")
        .map_err(|_| Fail::runner("session (a string) is required"))?;
    let s = entity(entities, name)?;
    let dirty = s.session.lock().await.is_dirty();
    if dirty == want {
        Ok(())
    } else {
        Err(Fail::runner(format!(
            "session {name} is {}dirty",
            if dirty { "" } else { "not " }
        )))
    }
}
