//! Transactions in the runner: the `withTransaction` session operation (its callback is a
//! list of operations run in order in the session) and the `testRunner` operations on a
//! session's transaction (`assertSessionTransactionState`, `assertSessionPinned`,
//! `assertSessionUnpinned`, `targetedFailPoint`).

use std::sync::Arc;

use bson::{Bson, Document};
use mongo_client::{ClientSession, ErrorKind, TransactionState};
use parking_lot::Mutex;

use super::Fail;
use super::ops::{OpError, Value};
use super::runner::State;
use super::sessions::{SessionEntity, SessionHandle, entity, transaction_options};

/// What the callback of `withTransaction` works with.
struct Callback<'s> {
    state: &'s State,
    ops: &'s [Document],
    /// The session entity: the session is put back in it while the callback runs, so that
    /// the callback's operations find it.
    handle: SessionHandle,
    /// A runner failure inside the callback (the driver only sees a stand-in error).
    fail: Arc<Mutex<Option<Fail>>>,
}

/// `withTransaction`: `callback` (operations), and the transaction options.
pub(crate) async fn with_transaction(
    state: &State,
    s: &SessionEntity,
    args: &Document,
) -> Result<Value, OpError> {
    let ops: Vec<Document> = args
        .get_array("callback")
        .map_err(|_| Fail::runner("withTransaction: callback (an array) is required"))?
        .iter()
        .map(|b| match b {
            Bson::Document(d) => Ok(d.clone()),
            other => Err(Fail::runner(format!("a callback operation: {other}"))),
        })
        .collect::<Result<_, _>>()?;
    let mut rest = args.clone();
    rest.remove("callback");
    let timeout = super::ops::op_timeout(&rest)?;
    rest.remove("timeoutMS");
    let options = transaction_options(&rest)?;
    let handle = s.session.clone();
    // The loop owns the session; the entity holds a stand-in (never used) meanwhile.
    let mut own = {
        let mut guard = handle.lock().await;
        let stand_in = guard.client().start_session(None)?;
        std::mem::replace(&mut *guard, stand_in)
    };
    let fail = Arc::new(Mutex::new(None));
    let context = Callback {
        state,
        ops: &ops,
        handle: handle.clone(),
        fail: fail.clone(),
    };
    let result = own
        .with_transaction_within(
            timeout,
            context,
            |session, cb| Box::pin(run_callback(session, cb)),
            options,
        )
        .await;
    *handle.lock().await = own;
    if let Some(f) = fail.lock().take() {
        return Err(f.into());
    }
    result?;
    Ok(Value::None)
}

/// Runs the callback's operations with `session` back in its entity; the first error
/// (expected or not) ends it and goes to `withTransaction`.
async fn run_callback(
    session: &mut ClientSession,
    cb: &mut Callback<'_>,
) -> mongo_client::Result<()> {
    std::mem::swap(&mut *cb.handle.lock().await, session);
    let mut out = Ok(());
    for op in cb.ops {
        match super::ops::run_checked(cb.state, op).await {
            Ok(None) => {}
            Ok(Some(e)) => {
                out = Err(e);
                break;
            }
            Err(f) => {
                let message = f.to_string();
                *cb.fail.lock() = Some(f);
                out = Err(mongo_client::Error::new(ErrorKind::Usage(message)));
                break;
            }
        }
    }
    std::mem::swap(&mut *cb.handle.lock().await, session);
    out
}

/// The session entity an assertion names (`session`).
fn named(state: &State, op: &str, args: &Document) -> Result<SessionHandle, Fail> {
    let name = args
        .get_str("session")
        .map_err(|_| Fail::runner(format!("{op}: session (a string) is required")))?;
    Ok(entity(&state.entities, name)?.session.clone())
}

/// `assertSessionTransactionState`: `none`, `starting`, `in_progress`, `committed`,
/// `aborted`.
pub(crate) async fn assert_state(state: &State, args: &Document) -> Result<(), Fail> {
    let session = named(state, "assertSessionTransactionState", args)?;
    let want = args
        .get_str("state")
        .map_err(|_| Fail::runner("assertSessionTransactionState: state is required"))?;
    let have = match session.lock().await.transaction_state() {
        TransactionState::Starting => "starting",
        TransactionState::InProgress => "in_progress",
        TransactionState::Committed | TransactionState::CommittedEmpty => "committed",
        TransactionState::Aborted => "aborted",
        _ => "none",
    };
    if have == want {
        Ok(())
    } else {
        Err(Fail::runner(format!(
            "the session's transaction is {have}, not {want}"
        )))
    }
}

/// `assertSessionPinned` / `assertSessionUnpinned`.
pub(crate) async fn assert_pinned(state: &State, args: &Document, want: bool) -> Result<(), Fail> {
    let session = named(state, "assertSessionPinned", args)?;
    let pinned = session.lock().await.pinned_server();
    if pinned.is_some() == want {
        Ok(())
    } else {
        Err(Fail::runner(match pinned {
            Some(p) => format!("the session is pinned to {p}"),
            None => "the session is not pinned".to_owned(),
        }))
    }
}

/// `targetedFailPoint`: the fail point on the mongos the session is pinned to.
pub(crate) async fn targeted_fail_point(state: &State, args: &Document) -> Result<(), Fail> {
    let session = named(state, "targetedFailPoint", args)?;
    let fp = args
        .get_document("failPoint")
        .map_err(|_| Fail::runner("targetedFailPoint: failPoint is required"))?
        .clone();
    let pinned = session
        .lock()
        .await
        .pinned_server()
        .ok_or_else(|| Fail::runner("targetedFailPoint: the session is not pinned"))?;
    state
        .env
        .deployment
        .configure_fail_point_on(&pinned, fp)
        .map(|_| ())
        .map_err(|e| Fail::runner(format!("configureFailPoint on {pinned} failed: {e}")))
}
