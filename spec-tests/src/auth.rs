//! Runner for the auth spec's connection string tests (`auth/tests/legacy`): the credential
//! built from each URI is compared with the case's `credential` (null: no credential).

use std::path::Path;

use mongo_client::ConnectionString;
use serde_json::{Map, Value};

use crate::util::{for_each_case, matches, suite_files};
use crate::{Context, Outcome, Suite};

/// Cases that contradict the current auth spec and another case of the same file. The
/// 2025-09-30 auth spec change removed explicit MONGODB-AWS credentials from connection
/// strings; the same file expects `user:pass@localhost.com` with MONGODB-AWS to be rejected,
/// so no parser can pass both. We follow the current spec.
const CONTRADICTED: [&str; 2] = [
    "should use username and password if specified (MONGODB-AWS)",
    "should use username, password and session token if specified (MONGODB-AWS)",
];

/// Runs the official auth connection string tests and the project's own.
pub(crate) fn run(ctx: &Context, out: &mut Outcome) -> bool {
    for file in suite_files(ctx, "auth/tests/legacy", Suite::Auth) {
        run_file(ctx, out, &file);
    }
    true
}

fn run_file(ctx: &Context, out: &mut Outcome, file: &Path) {
    let official = ctx.official.as_ref().is_some_and(|o| file.starts_with(o));
    for_each_case(ctx, out, file, |out, description, case| {
        if official && CONTRADICTED.contains(&description) {
            out.skip(
                file,
                description,
                "contradicts the auth spec's 2025-09-30 change (no MONGODB-AWS credentials in \
                 the URI) and this file's own case 'should throw an exception if username and \
                 password provided (MONGODB-AWS)'",
            );
            return;
        }
        out.record(file, description, run_case(case));
    });
}

fn run_case(case: &Value) -> Result<(), String> {
    let uri = case
        .get("uri")
        .and_then(Value::as_str)
        .ok_or("the case has no `uri` string")?;
    let valid = case
        .get("valid")
        .and_then(Value::as_bool)
        .ok_or("the case has no `valid` boolean")?;
    let cs = match (ConnectionString::parse(uri), valid) {
        (Err(_), false) => return Ok(()),
        (Err(e), true) => return Err(format!("valid: expected success, got error: {e}")),
        (Ok(_), false) => return Err("valid: expected an error, parsing succeeded".to_owned()),
        (Ok(cs), true) => cs,
    };
    let actual = cs.options.credential.as_ref();
    match (case.get("credential"), actual) {
        (None | Some(Value::Null), None) => Ok(()),
        (None | Some(Value::Null), Some(c)) => Err(format!("credential: expected none, got {c:?}")),
        (Some(_), None) => Err("credential: expected one, got none".to_owned()),
        (Some(Value::Object(e)), Some(c)) => {
            let props = c.mechanism_properties().map(crate::uri_options::doc_view);
            let fields = [
                ("username", c.username().map(Value::from)),
                ("password", c.password().map(Value::from)),
                ("source", Some(Value::from(c.source()))),
                ("mechanism", c.mechanism().map(|m| Value::from(m.as_str()))),
                ("mechanism_properties", props),
            ];
            compare_fields(e, &fields)
        }
        (Some(other), _) => Err(format!("credential: unexpected test value {other}")),
    }
}

fn compare_fields(e: &Map<String, Value>, fields: &[(&str, Option<Value>)]) -> Result<(), String> {
    for (name, actual) in fields {
        let Some(expected) = e.get(*name) else {
            continue;
        };
        match (expected, actual) {
            (Value::Null, None) => {}
            (Value::Null, Some(a)) => {
                return Err(format!("credential.{name}: expected null, got {a}"));
            }
            (x, None) => return Err(format!("credential.{name}: expected {x}, got null")),
            (x, Some(a)) => {
                matches(x, a).map_err(|m| format!("credential.{name}{m}"))?;
            }
        }
    }
    Ok(())
}
