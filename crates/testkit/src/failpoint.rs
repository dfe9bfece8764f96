//! The `failCommand` fail point and the test-side reply faults.

use std::collections::VecDeque;
use std::time::Duration;

use bson::{Bson, Document, doc};
use parking_lot::Mutex;

use crate::error::{CmdResult, CommandError};

/// How many times a fail point fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    AlwaysOn,
    Times(i64),
    Skip(i64),
}

/// A configured `failCommand` fail point.
#[derive(Debug, Clone)]
struct FailCommand {
    mode: Mode,
    commands: Vec<String>,
    error_code: Option<i32>,
    error_labels: Option<Vec<String>>,
    close_connection: bool,
    block: Option<Duration>,
    app_name: Option<String>,
    write_concern_error: Option<Document>,
}

/// What a fired fail point asks the connection to do.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct FailAction {
    /// Sleep this long before anything else.
    pub(crate) block: Option<Duration>,
    /// Hang up without replying.
    pub(crate) close: bool,
    /// Reply with this error instead of running the command.
    pub(crate) error: Option<Document>,
    /// Run the command, then attach this writeConcernError.
    pub(crate) write_concern_error: Option<Document>,
}

#[cfg(test)]
impl FailAction {
    pub(crate) fn is_noop(&self) -> bool {
        *self == Self::default()
    }
}

/// The fail points of one server.
#[derive(Debug, Default)]
pub(crate) struct FailPoints {
    fail_command: Mutex<Option<FailCommand>>,
}

fn code_name(code: i32) -> &'static str {
    match code {
        1 => "InternalError",
        2 => "BadValue",
        6 => "HostUnreachable",
        7 => "HostNotFound",
        9 => "FailedToParse",
        11 => "UserNotFound",
        13 => "Unauthorized",
        18 => "AuthenticationFailed",
        20 => "IllegalOperation",
        24 => "LockTimeout",
        50 => "MaxTimeMSExpired",
        59 => "CommandNotFound",
        89 => "NetworkTimeout",
        91 => "ShutdownInProgress",
        112 => "WriteConflict",
        189 => "PrimarySteppedDown",
        251 => "NoSuchTransaction",
        262 => "ExceededTimeLimit",
        9001 => "SocketException",
        10107 => "NotWritablePrimary",
        11000 => "DuplicateKey",
        11600 => "InterruptedAtShutdown",
        11602 => "InterruptedDueToReplStateChange",
        13435 => "NotPrimaryNoSecondaryOk",
        13436 => "NotPrimaryOrSecondary",
        _ => "",
    }
}

impl FailPoints {
    /// Handles `configureFailPoint` (the command document as sent).
    pub(crate) fn configure(&self, cmd: &Document) -> CmdResult<Document> {
        let name = cmd.get_str("configureFailPoint").map_err(|_| {
            CommandError::type_mismatch("configureFailPoint must name a fail point")
        })?;
        if name != "failCommand" {
            return Err(CommandError::bad_value(format!(
                "Cannot find failpoint: {name} (the testkit supports failCommand)"
            )));
        }
        let mode = match cmd.get("mode") {
            Some(Bson::String(s)) if s == "alwaysOn" => Some(Mode::AlwaysOn),
            Some(Bson::String(s)) if s == "off" => None,
            Some(Bson::Document(d)) => {
                if let Some(t) = d.get("times") {
                    Some(Mode::Times(as_i64(t).ok_or_else(|| {
                        CommandError::type_mismatch("mode.times must be a number")
                    })?))
                } else if let Some(s) = d.get("skip") {
                    Some(Mode::Skip(as_i64(s).ok_or_else(|| {
                        CommandError::type_mismatch("mode.skip must be a number")
                    })?))
                } else {
                    return Err(CommandError::bad_value(
                        "mode must have 'times' or 'skip' (activationProbability is not supported)",
                    ));
                }
            }
            _ => {
                return Err(CommandError::bad_value(
                    "mode must be 'alwaysOn', 'off' or {times: N}",
                ));
            }
        };
        let mut slot = self.fail_command.lock();
        let Some(mode) = mode else {
            *slot = None;
            return Ok(doc! { "count": 0_i64, "ok": 1.0 });
        };
        let data = match cmd.get("data") {
            Some(Bson::Document(d)) => d.clone(),
            None => Document::new(),
            Some(_) => return Err(CommandError::type_mismatch("data must be a document")),
        };
        let commands = match data.get("failCommands") {
            Some(Bson::Array(a)) => a
                .iter()
                .map(|c| {
                    c.as_str()
                        .map(String::from)
                        .ok_or_else(|| CommandError::type_mismatch("failCommands must be strings"))
                })
                .collect::<CmdResult<Vec<_>>>()?,
            _ => {
                return Err(CommandError::bad_value(
                    "failCommand requires data.failCommands (an array of command names)",
                ));
            }
        };
        let block = if data
            .get("blockConnection")
            .is_some_and(crate::query::truthy)
        {
            let ms = data
                .get("blockTimeMS")
                .and_then(as_i64)
                .ok_or_else(|| CommandError::bad_value("blockConnection needs blockTimeMS"))?;
            Some(Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
        } else {
            None
        };
        *slot = Some(FailCommand {
            mode,
            commands,
            error_code: data
                .get("errorCode")
                .and_then(as_i64)
                .and_then(|c| i32::try_from(c).ok()),
            error_labels: match data.get("errorLabels") {
                Some(Bson::Array(a)) => Some(
                    a.iter()
                        .filter_map(|l| l.as_str().map(String::from))
                        .collect(),
                ),
                _ => None,
            },
            close_connection: data
                .get("closeConnection")
                .is_some_and(crate::query::truthy),
            block,
            app_name: data.get_str("appName").ok().map(String::from),
            write_concern_error: data.get_document("writeConcernError").ok().cloned(),
        });
        Ok(doc! { "count": 0_i64, "ok": 1.0 })
    }

    /// Turns every fail point off.
    pub(crate) fn clear(&self) {
        *self.fail_command.lock() = None;
    }

    /// Whether the fail point fires for this command; consumes one activation when it does.
    pub(crate) fn check(&self, command: &str, app_name: Option<&str>) -> FailAction {
        if command == "configureFailPoint" {
            return FailAction::default();
        }
        let mut slot = self.fail_command.lock();
        let Some(fp) = slot.as_mut() else {
            return FailAction::default();
        };
        if !fp.commands.iter().any(|c| c == command) {
            return FailAction::default();
        }
        if let Some(want) = &fp.app_name {
            if app_name != Some(want.as_str()) {
                return FailAction::default();
            }
        }
        match &mut fp.mode {
            Mode::AlwaysOn => {}
            Mode::Skip(n) if *n > 0 => {
                *n -= 1;
                return FailAction::default();
            }
            Mode::Skip(_) => {}
            Mode::Times(n) => {
                if *n <= 0 {
                    *slot = None;
                    return FailAction::default();
                }
                *n -= 1;
            }
        }
        let fp = fp.clone();
        if matches!(fp.mode, Mode::Times(0)) {
            *slot = None;
        }
        drop(slot);
        let mut action = FailAction {
            block: fp.block,
            close: fp.close_connection,
            ..FailAction::default()
        };
        if action.close {
            return action;
        }
        if let Some(code) = fp.error_code {
            let mut d = doc! {
                "ok": 0.0,
                "errmsg": "Failing command via 'failCommand' failpoint",
                "code": code,
                "codeName": code_name(code),
            };
            if let Some(labels) = &fp.error_labels {
                d.insert("errorLabels", labels.clone());
            }
            action.error = Some(d);
        } else if let Some(wce) = fp.write_concern_error {
            action.write_concern_error = Some(wce);
        }
        action
    }

    /// The labels to attach when the fail point sets errorLabels on a writeConcernError reply.
    pub(crate) fn labels_for_wce(&self) -> Option<Vec<String>> {
        self.fail_command
            .lock()
            .as_ref()
            .and_then(|f| f.error_labels.clone())
    }
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
mod tests {
    use super::*;

    #[test]
    fn times_mode_fires_n_times_then_turns_off() {
        let fp = FailPoints::default();
        fp.configure(&doc! {
            "configureFailPoint": "failCommand",
            "mode": { "times": 2 },
            "data": { "failCommands": ["find"], "errorCode": 91, "errorLabels": ["RetryableWriteError"] },
        })
        .unwrap();
        assert!(fp.check("insert", None).is_noop());
        let a = fp.check("find", None);
        let err = a.error.unwrap();
        assert_eq!(err.get_i32("code").unwrap(), 91);
        assert_eq!(err.get_str("codeName").unwrap(), "ShutdownInProgress");
        assert_eq!(err.get_array("errorLabels").unwrap().len(), 1);
        assert!(fp.check("find", None).error.is_some());
        assert!(fp.check("find", None).is_noop());
    }

    #[test]
    fn app_name_close_and_block() {
        let fp = FailPoints::default();
        fp.configure(&doc! {
            "configureFailPoint": "failCommand",
            "mode": "alwaysOn",
            "data": { "failCommands": ["ping"], "closeConnection": true, "blockConnection": true, "blockTimeMS": 50, "appName": "app" },
        })
        .unwrap();
        assert!(fp.check("ping", Some("other")).is_noop());
        let a = fp.check("ping", Some("app"));
        assert!(a.close);
        assert_eq!(a.block, Some(Duration::from_millis(50)));
        fp.configure(&doc! { "configureFailPoint": "failCommand", "mode": "off" })
            .unwrap();
        assert!(fp.check("ping", Some("app")).is_noop());
        assert!(
            fp.configure(&doc! { "configureFailPoint": "nope", "mode": "alwaysOn" })
                .is_err()
        );
    }
}
