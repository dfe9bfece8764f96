//! The stable API: the `apiVersion` / `apiStrict` / `apiDeprecationErrors` parameters as
//! mongod checks them (APIVersionError 322, APIStrictError 323, APIDeprecationError 324), the
//! `requireApiVersion` and `acceptApiVersion2` server parameters, and mongod's test commands
//! for the API (`testVersion2`, `testVersion1And2`, `testDeprecation`,
//! `testDeprecationInVersion2`, `testRemoval`).

use bson::{Bson, Document};

use super::Node;
use super::args::ok;
use crate::error::{CmdResult, CommandError, codes};

const API_VERSION_ERROR: i32 = 322;
const API_STRICT_ERROR: i32 = 323;
const API_DEPRECATION_ERROR: i32 = 324;

/// The commands of API version 1 (mongod 8.0).
const API_V1: &[&str] = &[
    "abortTransaction",
    "aggregate",
    "authenticate",
    "bulkWrite",
    "collMod",
    "commitTransaction",
    "count",
    "create",
    "createIndexes",
    "delete",
    "drop",
    "dropDatabase",
    "dropIndexes",
    "endSessions",
    "explain",
    "find",
    "findAndModify",
    "getMore",
    "hello",
    "insert",
    "killCursors",
    "listCollections",
    "listIndexes",
    "ping",
    "refreshSessions",
    "saslContinue",
    "saslStart",
    "update",
    // Test commands.
    "testVersion1And2",
    "testDeprecation",
    "testDeprecationInVersion2",
    "testRemoval",
];

/// The commands of the test-only API version 2.
const API_V2: &[&str] = &[
    "testVersion2",
    "testVersion1And2",
    "testDeprecationInVersion2",
];

/// Aggregation stages of API version 1.
const API_V1_STAGES: &[&str] = &[
    "$addFields",
    "$bucket",
    "$bucketAuto",
    "$changeStream",
    "$count",
    "$densify",
    "$documents",
    "$facet",
    "$fill",
    "$geoNear",
    "$graphLookup",
    "$group",
    "$limit",
    "$lookup",
    "$match",
    "$merge",
    "$out",
    "$project",
    "$redact",
    "$replaceRoot",
    "$replaceWith",
    "$sample",
    "$set",
    "$setWindowFields",
    "$skip",
    "$sort",
    "$sortByCount",
    "$unionWith",
    "$unset",
    "$unwind",
];

/// Commands that need no `apiVersion` even when `requireApiVersion` is on.
const NO_API_VERSION_NEEDED: &[&str] = &["hello", "isMaster", "ismaster", "getMore"];

fn bool_arg(cmd: &Document, key: &str) -> CmdResult<Option<bool>> {
    match cmd.get(key) {
        None => Ok(None),
        Some(Bson::Boolean(b)) => Ok(Some(*b)),
        Some(_) => Err(CommandError::type_mismatch(format!(
            "BSON field '{key}' is the wrong type, expected type 'bool'"
        ))),
    }
}

impl Node {
    fn parameter_is_true(&self, name: &str) -> bool {
        matches!(self.parameter(name), Some(Bson::Boolean(true)))
    }

    /// Checks a command's API parameters as mongod does before running it.
    pub(super) fn check_api(&self, name: &str, cmd: &Document) -> CmdResult<()> {
        let strict = bool_arg(cmd, "apiStrict")?;
        let deprecation = bool_arg(cmd, "apiDeprecationErrors")?;
        let version = match cmd.get("apiVersion") {
            None => None,
            Some(Bson::String(v)) => Some(v.as_str()),
            Some(_) => {
                return Err(CommandError::type_mismatch(
                    "BSON field 'apiVersion' is the wrong type, expected type 'string'",
                ));
            }
        };
        let Some(version) = version else {
            if strict.is_some() {
                return Err(CommandError::new(
                    API_VERSION_ERROR,
                    "APIVersionError",
                    "Provided apiStrict without passing apiVersion",
                ));
            }
            if deprecation.is_some() {
                return Err(CommandError::new(
                    API_VERSION_ERROR,
                    "APIVersionError",
                    "Provided apiDeprecationErrors without passing apiVersion",
                ));
            }
            if self.parameter_is_true("requireApiVersion") && !NO_API_VERSION_NEEDED.contains(&name)
            {
                return Err(CommandError::new(
                    498_870,
                    "Location498870",
                    "The apiVersion parameter is required, please configure your MongoClient's \
                     API version",
                ));
            }
            return Ok(());
        };
        let known =
            version == "1" || (version == "2" && self.parameter_is_true("acceptApiVersion2"));
        if !known {
            return Err(CommandError::new(
                API_VERSION_ERROR,
                "APIVersionError",
                "API version must be \"1\"",
            ));
        }
        let commands = if version == "1" { API_V1 } else { API_V2 };
        if strict == Some(true) && !commands.contains(&name) {
            return Err(CommandError::new(
                API_STRICT_ERROR,
                "APIStrictError",
                format!(
                    "Provided apiStrict:true, but the command {name} is not in API Version {version}"
                ),
            ));
        }
        if strict == Some(true) && version == "1" && name == "aggregate" {
            if let Some(Bson::Array(pipeline)) = cmd.get("pipeline") {
                for stage in pipeline.iter().filter_map(Bson::as_document) {
                    if let Some(op) = stage.keys().next() {
                        if !API_V1_STAGES.contains(&op.as_str()) {
                            return Err(CommandError::new(
                                API_STRICT_ERROR,
                                "APIStrictError",
                                format!(
                                    "{op} is not allowed with 'apiStrict: true' in API Version 1"
                                ),
                            ));
                        }
                    }
                }
            }
        }
        let deprecated = match version {
            "1" => name == "testDeprecation",
            _ => name == "testDeprecationInVersion2",
        };
        if deprecation == Some(true) && deprecated {
            return Err(CommandError::new(
                API_DEPRECATION_ERROR,
                "APIDeprecationError",
                format!(
                    "Provided apiDeprecationErrors:true, but the command {name} is deprecated in \
                     API Version {version}"
                ),
            ));
        }
        Ok(())
    }

    /// mongod's API test commands: they exist when test commands are enabled and just
    /// succeed (the checks above are what they test).
    pub(super) fn api_test_command(&self, name: &str) -> CmdResult<Document> {
        if !self.parameter_is_true("enableTestCommands") {
            return Err(CommandError::new(
                codes::COMMAND_NOT_FOUND,
                "CommandNotFound",
                format!("no such command: '{name}'"),
            ));
        }
        Ok(ok(Document::new()))
    }
}
