//! `expectError`: what the driver's error must say (client or server, timeout, message,
//! code, code name, labels, the server's response).

use bson::{Bson, Document, doc};
use mongo_client::{Error, ErrorKind};

use super::Fail;
use super::client_bulk;
use super::matching::{self, Lookup};

/// Whether the error comes from the client rather than from a server reply.
fn is_client_error(e: &Error) -> bool {
    match e.kind() {
        // A client bulk write's error is the client's when its top-level error is.
        ErrorKind::ClientBulkWrite(b) => b.error.as_ref().is_some_and(is_client_error),
        ErrorKind::Command(_) | ErrorKind::Write(_) => false,
        _ => true,
    }
}

/// Whether the error is a timeout (an expired timeoutMS; socket, selection or check-out).
fn is_timeout(e: &Error) -> bool {
    e.is_timeout()
        || e.is_network_timeout()
        || matches!(e.kind(), ErrorKind::Pool(p) if p.to_string().to_ascii_lowercase().contains("timed out"))
        || matches!(e.kind(), ErrorKind::ServerSelection(m) if m.to_ascii_lowercase().contains("timed out") || m.to_ascii_lowercase().contains("timeout"))
}

fn code_name(e: &Error) -> Option<String> {
    match e.kind() {
        ErrorKind::Command(c) => Some(c.code_name.clone()),
        ErrorKind::Write(w) => w
            .write_concern_error
            .as_ref()
            .map(|c| c.code_name.clone())
            .filter(|n| !n.is_empty()),
        ErrorKind::ClientBulkWrite(b) => b.error.as_ref().and_then(code_name),
        _ => None,
    }
}

/// The server's error response as far as the error keeps it.
fn response(e: &Error) -> Option<Document> {
    match e.kind() {
        ErrorKind::Command(c) => {
            let mut d = c.response.clone();
            d.extend(
                doc! {"ok": 0.0, "code": c.code, "codeName": &c.code_name, "errmsg": &c.message},
            );
            let labels: Vec<Bson> = e.labels().map(|l| Bson::String(l.to_string())).collect();
            if !labels.is_empty() {
                d.insert("errorLabels", labels);
            }
            if let Some(tv) = &c.topology_version {
                d.insert("topologyVersion", tv.clone());
            }
            Some(d)
        }
        ErrorKind::ClientBulkWrite(b) => b.error.as_ref().and_then(response),
        _ => None,
    }
}

/// Checks one `expectError` against the driver's error.
pub(crate) fn check(expected: &Document, e: &Error, lookup: &dyn Lookup) -> Result<(), Fail> {
    let fail = |what: String| {
        Err(Fail::runner(format!(
            "expectError: {what}; the error was: {e}"
        )))
    };
    for (k, v) in expected {
        match k.as_str() {
            "isError" => {}
            "isClientError" => {
                if v.as_bool() != Some(is_client_error(e)) {
                    return fail(format!("isClientError {v}"));
                }
            }
            "isTimeoutError" => {
                if v.as_bool() != Some(is_timeout(e)) {
                    return fail(format!("isTimeoutError {v}"));
                }
            }
            "errorContains" => {
                let want = v.as_str().unwrap_or_default().to_ascii_lowercase();
                if !e.to_string().to_ascii_lowercase().contains(&want) {
                    return fail(format!("errorContains {want:?}"));
                }
            }
            "errorCode" => {
                let want = v.as_i64().or_else(|| v.as_i32().map(i64::from));
                if e.code().map(i64::from) != want {
                    return fail(format!("errorCode {v}, got {:?}", e.code()));
                }
            }
            "errorCodeName" => {
                let want = v.as_str().unwrap_or_default();
                if !code_name(e).is_some_and(|n| n.eq_ignore_ascii_case(want)) {
                    return fail(format!("errorCodeName {want}, got {:?}", code_name(e)));
                }
            }
            "errorLabelsContain" => {
                for l in v.as_array().into_iter().flatten().filter_map(Bson::as_str) {
                    if !e.has_label(l) {
                        return fail(format!("label {l} missing"));
                    }
                }
            }
            "errorLabelsOmit" => {
                for l in v.as_array().into_iter().flatten().filter_map(Bson::as_str) {
                    if e.has_label(l) {
                        return fail(format!("label {l} present"));
                    }
                }
            }
            "errorResponse" => {
                let Some(actual) = response(e) else {
                    return fail("errorResponse: the error holds no server response".into());
                };
                if let Err(m) = matching::matches(v, Some(&Bson::Document(actual)), true, lookup) {
                    return fail(format!("errorResponse: {m}"));
                }
            }
            "expectResult" => {
                // The partial result a bulk write error carries (BulkWriteException.writeResult).
                let partial = match e.client_bulk_write_failure() {
                    Some(b) => b.partial_result.as_ref().map(bson::serialize_to_bson),
                    None => e.partial_bulk_result().map(bson::serialize_to_bson),
                }
                .transpose()
                .map_err(|err| Fail::runner(format!("the partial result: {err}")))?;
                if let Err(m) = matching::matches(v, partial.as_ref(), true, lookup) {
                    return fail(format!("expectResult: {m}"));
                }
            }
            "writeErrors" => {
                let failure = e.client_bulk_write_failure();
                if let Err(m) = client_bulk::check_write_errors(v, failure, lookup) {
                    return fail(m);
                }
            }
            "writeConcernErrors" => {
                let failure = e.client_bulk_write_failure();
                if let Err(m) = client_bulk::check_write_concern_errors(v, failure, lookup) {
                    return fail(m);
                }
            }
            other => return Err(Fail::runner(format!("unknown expectError key {other}"))),
        }
    }
    Ok(())
}
