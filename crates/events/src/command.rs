//! Command monitoring events: started, succeeded, failed.

use std::time::Duration;

use bson::Document;

use crate::{ConnectionId, EventError, ServerAddress, ServiceId};

/// The connection a command ran on, as command events report it.
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectionInfo {
    /// The server's address.
    pub address: ServerAddress,
    /// The driver's id for the connection.
    pub driver_connection_id: ConnectionId,
    /// The server's id for the connection (hello's `connectionId`), when it reported one.
    pub server_connection_id: Option<i64>,
}

/// A command was sent.
#[derive(Clone, Debug, PartialEq)]
pub struct CommandStartedEvent {
    /// The command, redacted to `{}` when it is sensitive.
    pub command: Document,
    /// The database the command ran against.
    pub database_name: String,
    /// The command's name (its first key).
    pub command_name: String,
    /// The wire protocol request id.
    pub request_id: i32,
    /// The operation id, shared by the commands of one operation (a find and its getMores).
    pub operation_id: Option<i64>,
    /// The connection.
    pub connection: ConnectionInfo,
    /// The service id, in load-balanced mode.
    pub service_id: Option<ServiceId>,
}

/// A command succeeded.
#[derive(Clone, Debug, PartialEq)]
pub struct CommandSucceededEvent {
    /// Time from sending the command to decoding its reply.
    pub duration: Duration,
    /// The reply, redacted to `{}` when the command is sensitive.
    pub reply: Document,
    /// The command's name.
    pub command_name: String,
    /// The database the command ran against.
    pub database_name: String,
    /// The wire protocol request id.
    pub request_id: i32,
    /// The operation id.
    pub operation_id: Option<i64>,
    /// The connection.
    pub connection: ConnectionInfo,
    /// The service id, in load-balanced mode.
    pub service_id: Option<ServiceId>,
}

/// A command failed (a network error, or a reply with `ok: 0`).
#[derive(Clone, Debug)]
pub struct CommandFailedEvent {
    /// Time from sending the command to the failure.
    pub duration: Duration,
    /// The command's name.
    pub command_name: String,
    /// The database the command ran against.
    pub database_name: String,
    /// The failure.
    pub failure: EventError,
    /// The server's reply when there was one, redacted when the command is sensitive.
    pub reply: Option<Document>,
    /// The wire protocol request id.
    pub request_id: i32,
    /// The operation id.
    pub operation_id: Option<i64>,
    /// The connection.
    pub connection: ConnectionInfo,
    /// The service id, in load-balanced mode.
    pub service_id: Option<ServiceId>,
}

/// Any command event.
#[derive(Clone, Debug)]
#[allow(missing_docs)]
pub enum CommandEvent {
    Started(CommandStartedEvent),
    Succeeded(CommandSucceededEvent),
    Failed(CommandFailedEvent),
}

impl CommandEvent {
    /// The command's name.
    pub fn command_name(&self) -> &str {
        match self {
            CommandEvent::Started(e) => &e.command_name,
            CommandEvent::Succeeded(e) => &e.command_name,
            CommandEvent::Failed(e) => &e.command_name,
        }
    }

    /// The request id.
    pub fn request_id(&self) -> i32 {
        match self {
            CommandEvent::Started(e) => e.request_id,
            CommandEvent::Succeeded(e) => e.request_id,
            CommandEvent::Failed(e) => e.request_id,
        }
    }
}

/// The commands whose bodies and replies command monitoring never shows.
pub const SENSITIVE_COMMANDS: [&str; 9] = [
    "authenticate",
    "saslstart",
    "saslcontinue",
    "getnonce",
    "createuser",
    "updateuser",
    "copydbgetnonce",
    "copydbsaslstart",
    "copydb",
];

/// Whether a command must be redacted in events and logs: one of [`SENSITIVE_COMMANDS`]
/// (compared case-insensitively), or a `hello` / legacy hello carrying
/// `speculativeAuthenticate`.
pub fn is_sensitive(command_name: &str, command: &Document) -> bool {
    let lower = command_name.to_ascii_lowercase();
    if SENSITIVE_COMMANDS.contains(&lower.as_str()) {
        return true;
    }
    matches!(lower.as_str(), "hello" | "ismaster")
        && command.contains_key("speculativeAuthenticate")
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn sensitive_commands_are_found_case_insensitively() {
        assert!(is_sensitive("saslStart", &doc! {}));
        assert!(is_sensitive("copydbSaslStart", &doc! {}));
        assert!(!is_sensitive("find", &doc! {}));
        assert!(!is_sensitive("hello", &doc! {"hello": 1}));
        assert!(is_sensitive(
            "hello",
            &doc! {"hello": 1, "speculativeAuthenticate": {}}
        ));
        assert!(is_sensitive(
            "isMaster",
            &doc! {"isMaster": 1, "speculativeAuthenticate": {}}
        ));
    }
}
