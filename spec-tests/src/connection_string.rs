//! Runner for the connection string tests (`connection-string/tests`) and, through
//! [`run_case`], the URI options tests that share their format.
//!
//! Each case is parsed with `ConnectionString::parse`; `valid` is checked against success,
//! `warning` against whether any warning was raised, and `hosts`, `auth` and `options`
//! against the parse result. A null `hosts`/`auth`/`options` asserts nothing; within `auth`,
//! a null field asserts that the part is absent.

use std::path::Path;

use mongo_client::{ConnectionString, HostKind};
use serde_json::{Map, Value};

use crate::util::{for_each_case, matches, suite_files};
use crate::{Context, Outcome, Suite};

/// Runs the official connection string tests and the project's own.
pub(crate) fn run(ctx: &Context, out: &mut Outcome) -> bool {
    for file in suite_files(ctx, "connection-string/tests", Suite::ConnectionString) {
        run_file(ctx, out, &file);
    }
    true
}

/// Runs every case of one file in the connection string format.
pub(crate) fn run_file(ctx: &Context, out: &mut Outcome, file: &Path) {
    for_each_case(ctx, out, file, |out, description, case| {
        out.record(file, description, run_case(case));
    });
}

/// Checks one case; the error names the first field that did not match.
pub(crate) fn run_case(case: &Value) -> Result<(), String> {
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
    if let Some(hosts) = case.get("hosts").and_then(Value::as_array) {
        check_hosts(hosts, &cs)?;
    }
    if let Some(auth) = case.get("auth").and_then(Value::as_object) {
        check_auth(auth, &cs)?;
    }
    if let Some(options) = case.get("options").and_then(Value::as_object) {
        check_options(options, &cs)?;
    }
    Ok(())
}

fn check_hosts(expected: &[Value], cs: &ConnectionString) -> Result<(), String> {
    if expected.len() != cs.hosts.len() {
        return Err(format!(
            "hosts: expected {} hosts, got {:?}",
            expected.len(),
            cs.hosts
        ));
    }
    for (i, (e, actual)) in expected.iter().zip(&cs.hosts).enumerate() {
        if let Some(host) = e.get("host").and_then(Value::as_str)
            && host != actual.host()
        {
            return Err(format!(
                "hosts[{i}].host: expected {host}, got {}",
                actual.host()
            ));
        }
        let port = actual.explicit_port();
        match e.get("port") {
            Some(Value::Null) | None => {}
            Some(p) => {
                if p.as_u64() != port.map(u64::from) {
                    return Err(format!("hosts[{i}].port: expected {p}, got {port:?}"));
                }
            }
        }
        if let Some(kind) = e.get("type").and_then(Value::as_str) {
            let actual_kind = match actual.kind() {
                HostKind::Ipv4 => "ipv4",
                HostKind::IpLiteral => "ip_literal",
                HostKind::Hostname => "hostname",
                HostKind::Unix => "unix",
            };
            if kind != actual_kind {
                return Err(format!(
                    "hosts[{i}].type: expected {kind}, got {actual_kind}"
                ));
            }
        }
    }
    Ok(())
}

fn check_auth(expected: &Map<String, Value>, cs: &ConnectionString) -> Result<(), String> {
    let fields = [
        ("username", cs.username.as_deref()),
        ("password", cs.password.as_deref()),
        ("db", cs.auth_database.as_deref()),
    ];
    for (name, actual) in fields {
        let Some(e) = expected.get(name) else {
            continue;
        };
        if e.as_str() != actual || (e.is_null() != actual.is_none()) {
            return Err(format!("auth.{name}: expected {e}, got {actual:?}"));
        }
    }
    Ok(())
}

fn check_options(expected: &Map<String, Value>, cs: &ConnectionString) -> Result<(), String> {
    let view = crate::uri_options::options_view(&cs.options);
    for (key, e) in expected {
        let lower = key.to_ascii_lowercase();
        let actual = view.get(&lower).cloned().unwrap_or(Value::Null);
        if e.is_null() {
            continue;
        }
        if actual.is_null() {
            return Err(format!("options.{key}: expected {e}, not set"));
        }
        matches(e, &actual).map_err(|m| format!("options.{key}{m}"))?;
    }
    Ok(())
}
