//! Fail points as mongod has them (`configureFailPoint`): `failCommand`,
//! `failGetMoreAfterCursorCheckout` and `onPrimaryTransactionalWrite`, with the modes
//! `off`, `alwaysOn`, `{times: N}`, `{skip: N}` and `{activationProbability: P}`; plus the
//! test-side reply faults.
//!
//! As in mongod, a fail point is evaluated in two steps: its predicate (the command name,
//! `appName`, `namespace`, what the data asks for) first, and only when that matches its
//! mode, so that commands the point does not target never consume a `times` activation.
//! `count` counts the activations since the process started (mongod's `timesEntered`).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use bson::{Bson, Document, doc};
use parking_lot::Mutex;

use crate::error::{CmdResult, CommandError};

/// The `failCommand` fail point.
pub(crate) const FAIL_COMMAND: &str = "failCommand";
/// Fails a `getMore` once its cursor has been found (`data.errorCode`).
pub(crate) const FAIL_GET_MORE: &str = "failGetMoreAfterCursorCheckout";
/// Hangs up on / fails a retryable write on a primary (`closeConnection`,
/// `failBeforeCommitExceptionCode`).
pub(crate) const ON_PRIMARY_TRANSACTIONAL_WRITE: &str = "onPrimaryTransactionalWrite";

const KNOWN: [&str; 3] = [FAIL_COMMAND, FAIL_GET_MORE, ON_PRIMARY_TRANSACTIONAL_WRITE];

/// When a fail point fires.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Off,
    AlwaysOn,
    Times(i64),
    Skip(i64),
    Probability(f64),
}

#[derive(Debug)]
struct FailPoint {
    mode: Mode,
    data: Document,
    entered: i64,
}

impl FailPoint {
    /// Evaluates the mode (the predicate already matched); true when the point fires.
    fn fire(&mut self) -> bool {
        let fires = match &mut self.mode {
            Mode::Off => false,
            Mode::AlwaysOn => true,
            Mode::Times(n) => {
                if *n > 0 {
                    *n -= 1;
                    true
                } else {
                    false
                }
            }
            Mode::Skip(n) => {
                if *n > 0 {
                    *n -= 1;
                    false
                } else {
                    true
                }
            }
            Mode::Probability(p) => rand::random::<f64>() < *p,
        };
        if matches!(self.mode, Mode::Times(0)) {
            self.mode = Mode::Off;
        }
        if fires {
            self.entered += 1;
        }
        fires
    }
}

/// What a command looks like to the `failCommand` predicate.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target<'a> {
    /// The command name as sent.
    pub(crate) command: &'a str,
    /// The connection's handshake `client.application.name`.
    pub(crate) app_name: Option<&'a str>,
    /// `db.collection` when the command names a collection, else `db`.
    pub(crate) namespace: &'a str,
}

/// What a fired `failCommand` asks of the command before it runs.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct FailAction {
    /// Sleep this long first.
    pub(crate) block: Option<Duration>,
    /// Hang up without replying.
    pub(crate) close: bool,
    /// Fail with this code (and message) instead of running the command.
    pub(crate) error: Option<(i32, String)>,
    /// The fail point's `errorLabels`: they replace the labels the server would add.
    pub(crate) labels: Option<Vec<String>>,
}

#[cfg(test)]
impl FailAction {
    /// Whether nothing fired.
    pub(crate) fn is_noop(&self) -> bool {
        *self == Self::default()
    }
}

/// A fired `onPrimaryTransactionalWrite`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TxnWriteFault {
    /// Hang up on the client (default true), after the write unless it fails.
    pub(crate) close: bool,
    /// Abort the write with this code before it commits.
    pub(crate) fail_code: Option<i32>,
}

/// The fail points of one server process.
#[derive(Debug, Default)]
pub(crate) struct FailPoints {
    points: Mutex<HashMap<&'static str, FailPoint>>,
}

/// mongod's aliases: a name in `failCommands` matches the command and its aliases.
fn canonical(name: &str) -> &str {
    match name {
        "ismaster" => "isMaster",
        "buildinfo" => "buildInfo",
        "findandmodify" => "findAndModify",
        "getlasterror" => "getLastError",
        other => other,
    }
}

fn parse_mode(mode: Option<&Bson>) -> CmdResult<Mode> {
    let bad = || {
        CommandError::bad_value(
            "mode must be 'off', 'alwaysOn' or a document with 'times', 'skip' or \
             'activationProbability'",
        )
    };
    match mode {
        Some(Bson::String(s)) if s == "alwaysOn" => Ok(Mode::AlwaysOn),
        Some(Bson::String(s)) if s == "off" => Ok(Mode::Off),
        Some(Bson::Document(d)) => {
            if let Some(t) = d.get("times") {
                let n = as_i64(t)
                    .ok_or_else(|| CommandError::type_mismatch("'times' must be a number"))?;
                if n < 0 {
                    return Err(CommandError::bad_value(
                        "'times' option to 'mode' must be positive",
                    ));
                }
                Ok(Mode::Times(n))
            } else if let Some(s) = d.get("skip") {
                let n = as_i64(s)
                    .ok_or_else(|| CommandError::type_mismatch("'skip' must be a number"))?;
                if n < 0 {
                    return Err(CommandError::bad_value(
                        "'skip' option to 'mode' must be positive",
                    ));
                }
                Ok(Mode::Skip(n))
            } else if let Some(p) = d.get("activationProbability") {
                let p = crate::query::as_f64(p).ok_or_else(|| {
                    CommandError::type_mismatch("'activationProbability' must be a number")
                })?;
                if !(0.0..=1.0).contains(&p) {
                    return Err(CommandError::bad_value(
                        "activationProbability must be between 0.0 and 1.0",
                    ));
                }
                Ok(Mode::Probability(p))
            } else {
                Err(bad())
            }
        }
        _ => Err(bad()),
    }
}

fn flag(data: &Document, key: &str) -> bool {
    matches!(data.get(key), Some(Bson::Boolean(true)))
}

impl FailPoints {
    /// Handles `configureFailPoint` (the command document as sent). Replies
    /// `{count: <activations so far>, ok: 1}`.
    pub(crate) fn configure(&self, cmd: &Document) -> CmdResult<Document> {
        let name = cmd.get_str("configureFailPoint").map_err(|_| {
            CommandError::type_mismatch("configureFailPoint must name a fail point (a string)")
        })?;
        let Some(&name) = KNOWN.iter().find(|k| **k == name) else {
            return Err(CommandError::new(
                266,
                "FailPointSetFailed",
                format!("{name} not found (the testkit has {})", KNOWN.join(", ")),
            ));
        };
        let mode = parse_mode(cmd.get("mode"))?;
        let data = match cmd.get("data") {
            Some(Bson::Document(d)) => d.clone(),
            None => Document::new(),
            Some(_) => return Err(CommandError::type_mismatch("'data' must be a document")),
        };
        let mut points = self.points.lock();
        let fp = points.entry(name).or_insert(FailPoint {
            mode: Mode::Off,
            data: Document::new(),
            entered: 0,
        });
        let count = fp.entered;
        fp.mode = mode;
        fp.data = data;
        let count = i32::try_from(count).map_or(Bson::Int64(count), Bson::Int32);
        Ok(doc! { "count": count, "ok": 1.0 })
    }

    /// Turns every fail point off (activation counts are kept, as in a process).
    pub(crate) fn clear(&self) {
        for fp in self.points.lock().values_mut() {
            fp.mode = Mode::Off;
        }
    }

    /// Runs `f` on the fail point `name` when it is on and `predicate` accepts its data, and
    /// only then evaluates its mode; `f` gets the data when the point fires.
    fn evaluate<R>(
        &self,
        name: &str,
        predicate: impl FnOnce(&Document) -> bool,
        f: impl FnOnce(&Document) -> R,
    ) -> Option<R> {
        let mut points = self.points.lock();
        let fp = points.get_mut(name)?;
        if fp.mode == Mode::Off || !predicate(&fp.data) {
            return None;
        }
        if !fp.fire() {
            return None;
        }
        Some(f(&fp.data))
    }

    /// The `failCommand` step before a command runs: block, hang up or fail.
    pub(crate) fn check(&self, target: &Target<'_>) -> FailAction {
        if target.command == "configureFailPoint" {
            return FailAction::default();
        }
        let acts = |d: &Document| {
            flag(d, "closeConnection") || flag(d, "blockConnection") || d.get("errorCode").is_some()
        };
        self.evaluate(
            FAIL_COMMAND,
            |d| matches_target(d, target) && acts(d),
            |d| {
                let mut action = FailAction {
                    labels: match d.get("errorLabels") {
                        Some(Bson::Array(a)) => Some(
                            a.iter()
                                .filter_map(|l| l.as_str().map(String::from))
                                .collect(),
                        ),
                        _ => None,
                    },
                    ..FailAction::default()
                };
                if flag(d, "blockConnection") {
                    match d.get("blockTimeMS").and_then(as_i64) {
                        Some(ms) if ms >= 0 => {
                            action.block =
                                Some(Duration::from_millis(u64::try_from(ms).unwrap_or(0)));
                        }
                        Some(_) => {
                            action.error = Some((72, "'blockTimeMS' must be non-negative".into()));
                            return action;
                        }
                        None => {
                            action.error = Some((
                                72,
                                "must specify 'blockTimeMS' when 'blockConnection' is true".into(),
                            ));
                            return action;
                        }
                    }
                }
                if flag(d, "closeConnection") {
                    action.close = true;
                } else if let Some(code) = d.get("errorCode") {
                    action.error = Some(match as_i64(code).and_then(|c| i32::try_from(c).ok()) {
                        Some(c) => (c, "Failing command via 'failCommand' failpoint".into()),
                        None => (14, "'errorCode' must be an integer".into()),
                    });
                }
                action
            },
        )
        .unwrap_or_default()
    }

    /// The `failCommand` step after a write-concern-taking command ran: the
    /// `writeConcernError` to attach, with the fail point's `errorLabels` if it has them.
    pub(crate) fn write_concern_error(
        &self,
        target: &Target<'_>,
    ) -> Option<(Document, Option<Vec<String>>)> {
        self.evaluate(
            FAIL_COMMAND,
            |d| matches_target(d, target) && d.get_document("writeConcernError").is_ok(),
            |d| {
                let wce = d
                    .get_document("writeConcernError")
                    .cloned()
                    .unwrap_or_default();
                let labels = match d.get("errorLabels") {
                    Some(Bson::Array(a)) => Some(
                        a.iter()
                            .filter_map(|l| l.as_str().map(String::from))
                            .collect(),
                    ),
                    _ => None,
                };
                (wce, labels)
            },
        )
    }

    /// `failGetMoreAfterCursorCheckout`: the error code a getMore fails with (default
    /// InternalError) once its cursor was found. A `namespace` in the data restricts it.
    pub(crate) fn get_more_after_checkout(&self, namespace: &str) -> Option<i32> {
        self.evaluate(
            FAIL_GET_MORE,
            |d| d.get_str("namespace").map_or(true, |ns| ns == namespace),
            |d| {
                d.get("errorCode")
                    .and_then(as_i64)
                    .and_then(|c| i32::try_from(c).ok())
                    .unwrap_or(1)
            },
        )
    }

    /// `onPrimaryTransactionalWrite`, evaluated for a retryable write on a primary.
    pub(crate) fn on_primary_transactional_write(&self) -> Option<TxnWriteFault> {
        self.evaluate(
            ON_PRIMARY_TRANSACTIONAL_WRITE,
            |_| true,
            |d| TxnWriteFault {
                close: !matches!(d.get("closeConnection"), Some(Bson::Boolean(false))),
                fail_code: d
                    .get("failBeforeCommitExceptionCode")
                    .and_then(as_i64)
                    .and_then(|c| i32::try_from(c).ok()),
            },
        )
    }
}

/// mongod's `shouldActivateFailCommandFailPoint`: the command (or an alias) is listed, and
/// `appName` / `namespace` match when given. Commands from internal clients never come
/// here, so `failInternalCommands` has nothing to change.
fn matches_target(data: &Document, t: &Target<'_>) -> bool {
    let listed = match data.get("failCommands") {
        Some(Bson::Array(a)) => a
            .iter()
            .filter_map(Bson::as_str)
            .any(|c| canonical(c) == canonical(t.command)),
        _ => false,
    };
    if !listed {
        return false;
    }
    if let Ok(want) = data.get_str("appName") {
        if t.app_name != Some(want) {
            return false;
        }
    }
    if let Ok(ns) = data.get_str("namespace") {
        if ns != t.namespace {
            return false;
        }
    }
    true
}

fn as_i64(b: &Bson) -> Option<i64> {
    match b {
        Bson::Int32(v) => Some(i64::from(*v)),
        Bson::Int64(v) => Some(*v),
        #[allow(clippy::cast_possible_truncation)]
        Bson::Double(v) if v.fract() == 0.0 && v.abs() < 9.0e15 => Some(*v as i64),
        _ => None,
    }
}

/// A fault the test injects into the next reply (see `TestServer::delay_next_reply`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReplyFault {
    Delay(Duration),
    Drop,
}

/// Queue of test-injected reply faults; applies to replies to commands other than
/// hello / isMaster (so that monitoring does not consume them).
#[derive(Debug, Default)]
pub(crate) struct ReplyFaults {
    queue: Mutex<VecDeque<ReplyFault>>,
}

impl ReplyFaults {
    pub(crate) fn push(&self, f: ReplyFault) {
        self.queue.lock().push_back(f);
    }

    pub(crate) fn take(&self, command: &str) -> Option<ReplyFault> {
        if matches!(command, "hello" | "isMaster" | "ismaster") {
            return None;
        }
        self.queue.lock().pop_front()
    }
}

#[cfg(test)]
#[path = "failpoint_tests.rs"]
mod tests;
