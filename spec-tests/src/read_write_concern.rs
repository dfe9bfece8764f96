//! Runner for the read and write concern spec's file-per-case tests
//! (`read-write-concern/tests/document` and `read-write-concern/tests/connection-string`; the
//! `operation` folder is unified format and runs under `cargo xtask spec unified`).
//!
//! - `document`: a `writeConcern` / `readConcern` as a user gives it is built into the client's
//!   [`WriteConcern`] / [`ReadConcern`] and checked with [`WriteConcern::validate`]; a valid one
//!   must send `writeConcernDocument` / `readConcernDocument` and answer `isServerDefault`
//!   and `isAcknowledged` as the case says. A negative `w` or `wtimeoutMS` cannot be
//!   expressed in the client's types (`u32`, `Duration`): such a case is invalid by
//!   construction, and the runner says so only when the case expects it.
//! - `connection-string`: the URI is parsed with `ConnectionString::parse`; `valid` and
//!   `warning` are checked as in the connection string suite, and the parsed options must hold
//!   exactly the `writeConcern` / `readConcern` given (an empty document: none set).

use std::path::Path;
use std::time::Duration;

use mongo_client::options::{Acknowledgment, WriteConcern};
use mongo_client::{ConnectionString, ReadConcern};
use serde_json::{Map, Value, json};

use crate::util::{for_each_case, suite_files};
use crate::{Context, Outcome, Suite};

/// Runs the official document and connection-string cases and the project's own.
pub(crate) fn run(ctx: &Context, out: &mut Outcome) -> bool {
    for file in suite_files(ctx, "read-write-concern/tests", Suite::ReadWriteConcern) {
        let is_uri = file
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|n| n == "connection-string");
        let is_document = file
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|n| n == "document");
        if !is_uri && !is_document {
            // `operation/` is unified format (`cargo xtask spec unified`).
            continue;
        }
        for_each_case(ctx, out, &file, |out, description, case| {
            if is_uri && let Some(reason) = uri_options_conflict(case) {
                out.skip(&file, description, reason);
                return;
            }
            let result = if is_uri {
                connection_string_case(case)
            } else {
                document_case(case)
            };
            out.record(&file, description, result);
        });
    }
    true
}

/// A `writeConcern` as the tests spell it, built with the client's types; `Err` when the
/// types cannot hold it (a negative number).
fn build_write_concern(spec: &Map<String, Value>) -> Result<WriteConcern, String> {
    let mut wc = WriteConcern::default();
    for (k, v) in spec {
        match (k.as_str(), v) {
            ("w", Value::String(s)) if s == "majority" => wc.w = Some(Acknowledgment::Majority),
            ("w", Value::String(s)) => wc.w = Some(Acknowledgment::Custom(s.clone())),
            ("w", n) => {
                let n = n
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| format!("w: {n} is not a number of members"))?;
                wc.w = Some(Acknowledgment::Nodes(n));
            }
            ("journal", Value::Bool(b)) => wc.journal = Some(*b),
            ("wtimeoutMS", n) => {
                let ms = n
                    .as_u64()
                    .ok_or_else(|| format!("wtimeoutMS: {n} is not a duration"))?;
                wc.w_timeout = Some(Duration::from_millis(ms));
            }
            (other, v) => return Err(format!("unknown writeConcern field {other}: {v}")),
        }
    }
    Ok(wc)
}

/// The document case: build, validate, then the document sent and the two predicates.
fn document_case(case: &Value) -> Result<(), String> {
    let valid = case
        .get("valid")
        .and_then(Value::as_bool)
        .ok_or("the case has no `valid` boolean")?;
    if let Some(spec) = case.get("writeConcern").and_then(Value::as_object) {
        let built = build_write_concern(spec).and_then(|wc| {
            wc.validate().map_err(|e| e.to_string())?;
            Ok(wc)
        });
        let wc = match (built, valid) {
            (Err(_), false) => return Ok(()),
            (Err(e), true) => return Err(format!("valid: expected a write concern, got {e}")),
            (Ok(wc), false) => return Err(format!("valid: expected an error, got {wc:?}")),
            (Ok(wc), true) => wc,
        };
        let sent = wc.to_document().map_or_else(
            || json!({}),
            |d| bson::Bson::Document(d).into_relaxed_extjson(),
        );
        expect_eq(case, "writeConcernDocument", &sent)?;
        expect_eq(case, "isServerDefault", &json!(wc.is_server_default()))?;
        expect_eq(case, "isAcknowledged", &json!(wc.is_acknowledged()))?;
    }
    if let Some(spec) = case.get("readConcern").and_then(Value::as_object) {
        let rc = match spec.get("level") {
            None => None,
            Some(Value::String(level)) => Some(ReadConcern::new(level.clone())),
            Some(other) => return Err(format!("readConcern.level: {other} is not a string")),
        };
        if let Some(other) = spec.keys().find(|k| *k != "level") {
            return Err(format!("unknown readConcern field {other}"));
        }
        if !valid {
            return Err("valid: expected an error, every read concern level is accepted".into());
        }
        // No read concern (the server's default) sends no document.
        let sent = rc.as_ref().map_or_else(
            || json!({}),
            |rc| bson::Bson::Document(rc.to_document()).into_relaxed_extjson(),
        );
        expect_eq(case, "readConcernDocument", &sent)?;
        expect_eq(case, "isServerDefault", &json!(rc.is_none()))?;
    }
    Ok(())
}

/// Checks `case[key]` against `actual` unless it is null or missing.
fn expect_eq(case: &Value, key: &str, actual: &Value) -> Result<(), String> {
    match case.get(key) {
        None | Some(Value::Null) => Ok(()),
        Some(expected) if numbers_as_f64(expected) == numbers_as_f64(actual) => Ok(()),
        Some(expected) => Err(format!("{key}: expected {expected}, got {actual}")),
    }
}

/// `v` with every number as a float, so that `3` and `3.0` compare equal.
fn numbers_as_f64(v: &Value) -> Value {
    match v {
        Value::Number(n) => n.as_f64().map_or(Value::Null, |f| json!(f)),
        Value::Array(a) => Value::Array(a.iter().map(numbers_as_f64).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), numbers_as_f64(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Why a connection-string case cannot pass: it asks a negative `wtimeoutMS` to fail the
/// parse, while the URI options spec's tests (`concern-options.json`, a negative
/// `wTimeoutMS`) ask the same value to warn and be ignored. The client keeps the URI options
/// rule, which `cargo xtask spec uri-options` checks.
fn uri_options_conflict(case: &Value) -> Option<&'static str> {
    let uri = case.get("uri").and_then(Value::as_str)?;
    let (_, query) = uri.split_once('?')?;
    let negative_wtimeout = query.split('&').any(|pair| {
        pair.split_once('=').is_some_and(|(k, v)| {
            k.eq_ignore_ascii_case("wtimeoutMS") && v.parse::<i64>().is_ok_and(|n| n < 0)
        })
    });
    let expects_error = case.get("valid").and_then(Value::as_bool) == Some(false);
    (negative_wtimeout && expects_error).then_some(
        "a negative wtimeoutMS must fail here but warn in uri-options/tests/concern-options.json; \
         the client follows the URI options spec (warn, ignore the value)",
    )
}

/// The connection-string case: parse, then compare the concerns parsed.
fn connection_string_case(case: &Value) -> Result<(), String> {
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
    if let Some(warning) = case.get("warning").and_then(Value::as_bool)
        && warning == cs.warnings.is_empty()
    {
        return Err(format!(
            "warning: expected {warning}, got warnings {:?}",
            cs.warnings
        ));
    }
    if case.get("writeConcern").is_some_and(|v| !v.is_null()) {
        let wc = cs.options.write_concern.clone().unwrap_or_default();
        let mut actual = Map::new();
        match &wc.w {
            Some(Acknowledgment::Nodes(n)) => {
                actual.insert("w".into(), json!(n));
            }
            Some(Acknowledgment::Majority) => {
                actual.insert("w".into(), json!("majority"));
            }
            Some(Acknowledgment::Custom(s)) => {
                actual.insert("w".into(), json!(s));
            }
            None => {}
        }
        if let Some(j) = wc.journal {
            actual.insert("journal".into(), json!(j));
        }
        if let Some(t) = wc.w_timeout {
            actual.insert("wtimeoutMS".into(), json!(t.as_millis()));
        }
        expect_eq(case, "writeConcern", &Value::Object(actual))?;
    }
    if case.get("readConcern").is_some_and(|v| !v.is_null()) {
        let actual = cs
            .options
            .read_concern_level
            .as_ref()
            .map_or_else(|| json!({}), |level| json!({ "level": level }));
        expect_eq(case, "readConcern", &actual)?;
    }
    Ok(())
}
