//! Command monitoring: started / succeeded / failed events with redaction of sensitive
//! commands, and the command log messages (target `mongo::command`, logging spec texts, long
//! documents and failures truncated by [`mongo_events::log`], which every component shares).

use std::time::Duration;

use bson::Document;
use mongo_events::command::{
    CommandEvent, CommandFailedEvent, CommandStartedEvent, CommandSucceededEvent, ConnectionInfo,
    is_sensitive,
};
use mongo_events::log::{display_truncated, document_json};
use mongo_events::{EventError, Listeners, ServiceId};

use crate::error::Error;

/// The `tracing` target of command log messages.
pub const LOG_TARGET: &str = mongo_events::log::COMMAND_TARGET;

/// Where command events go (log messages go to `tracing`).
#[derive(Clone, Debug, Default)]
pub(crate) struct CommandMonitor {
    pub(crate) listeners: Listeners,
}

fn log_enabled() -> bool {
    tracing::enabled!(target: "mongo::command", tracing::Level::DEBUG)
}

/// One command as monitoring sees it.
pub(crate) struct CommandInfo<'a> {
    pub(crate) name: &'a str,
    pub(crate) db: &'a str,
    pub(crate) request_id: i32,
    pub(crate) operation_id: Option<i64>,
    pub(crate) connection: &'a ConnectionInfo,
    pub(crate) service_id: Option<ServiceId>,
    pub(crate) sensitive: bool,
}

/// Writes one command log message (target `mongo::command`) with the fields every command
/// message has, then `extra` fields, then the message text.
macro_rules! log_command {
    ($info:expr, $msg:literal, $($extra:tt)*) => {{
        let info: &CommandInfo<'_> = $info;
        let c = info.connection;
        tracing::debug!(target: "mongo::command",
            commandName = info.name, databaseName = info.db, requestId = info.request_id,
            operationId = info.operation_id, driverConnectionId = c.driver_connection_id.0,
            serverHost = %c.address.host(), serverPort = c.address.port(),
            serverConnectionId = c.server_connection_id,
            serviceId = info.service_id.map(|s| s.to_string()),
            $($extra)*
            $msg);
    }};
}

/// `doc`, or an empty document for a sensitive command.
fn redacted<'a>(info: &CommandInfo<'_>, doc: &'a Document, empty: &'a Document) -> &'a Document {
    if info.sensitive { empty } else { doc }
}

impl CommandMonitor {
    pub(crate) fn wants_anything(&self) -> bool {
        self.listeners.has_command() || log_enabled()
    }

    pub(crate) fn is_sensitive(name: &str, command: &Document) -> bool {
        is_sensitive(name, command)
    }

    pub(crate) fn started(&self, info: &CommandInfo<'_>, command: &Document) {
        let empty = Document::new();
        let shown = redacted(info, command, &empty);
        if log_enabled() {
            let text = document_json(shown);
            log_command!(info, "Command started", command = text.as_str(),);
        }
        self.listeners.emit_command(|| {
            CommandEvent::Started(CommandStartedEvent {
                command: shown.clone(),
                database_name: info.db.to_owned(),
                command_name: info.name.to_owned(),
                request_id: info.request_id,
                operation_id: info.operation_id,
                connection: info.connection.clone(),
                service_id: info.service_id,
            })
        });
    }

    pub(crate) fn succeeded(&self, info: &CommandInfo<'_>, reply: &Document, duration: Duration) {
        let empty = Document::new();
        let shown = redacted(info, reply, &empty);
        if log_enabled() {
            let text = document_json(shown);
            log_command!(
                info,
                "Command succeeded",
                durationMS = duration.as_secs_f64() * 1000.0,
                reply = text.as_str(),
            );
        }
        self.listeners.emit_command(|| {
            CommandEvent::Succeeded(CommandSucceededEvent {
                duration,
                reply: shown.clone(),
                command_name: info.name.to_owned(),
                database_name: info.db.to_owned(),
                request_id: info.request_id,
                operation_id: info.operation_id,
                connection: info.connection.clone(),
                service_id: info.service_id,
            })
        });
    }

    pub(crate) fn failed(
        &self,
        info: &CommandInfo<'_>,
        error: &Error,
        reply: Option<&Document>,
        duration: Duration,
    ) {
        if log_enabled() {
            // A sensitive command's server error is redacted; a network error is not the
            // server's reply and is shown whole.
            let text = if info.sensitive {
                display_truncated(&error.redacted())
            } else {
                display_truncated(error)
            };
            log_command!(
                info,
                "Command failed",
                durationMS = duration.as_secs_f64() * 1000.0,
                failure = text.as_str(),
            );
        }
        self.listeners.emit_command(|| {
            let empty = Document::new();
            CommandEvent::Failed(CommandFailedEvent {
                duration,
                command_name: info.name.to_owned(),
                database_name: info.db.to_owned(),
                failure: if info.sensitive {
                    EventError::new(error.redacted())
                } else {
                    EventError::new(error.clone())
                },
                reply: reply.map(|r| redacted(info, r, &empty).clone()),
                request_id: info.request_id,
                operation_id: info.operation_id,
                connection: info.connection.clone(),
                service_id: info.service_id,
            })
        });
    }
}
