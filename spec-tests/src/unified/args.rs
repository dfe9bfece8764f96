//! The arguments of an operation in the unified format: the allowed keys, the options
//! struct they make (`timeoutMS` is set on the operation apart), and the required values.

use bson::Document;
use mongo_client::UpdateModifications;

use super::Fail;

/// Checks that only `allowed` argument keys are present (`session` is named apart).
pub(crate) fn allow(op: &str, args: &Document, allowed: &[&str]) -> Result<(), Fail> {
    for k in args.keys() {
        if k == "session" {
            // Resolved by `entity_operation` and passed to the operation.
            continue;
        }
        if k == "timeoutMS" {
            // Read by `op_timeout` and set on the operation.
            continue;
        }
        if !allowed.contains(&k.as_str()) {
            return Err(Fail::unsupported(format!("{op} with the argument {k}")));
        }
    }
    Ok(())
}

/// The operation's `timeoutMS` argument, if any.
pub(crate) fn op_timeout(args: &Document) -> Result<Option<std::time::Duration>, Fail> {
    args.get("timeoutMS")
        .map(|v| super::entities::millis(v, "timeoutMS"))
        .transpose()
}

pub(crate) fn req_doc<'a>(op: &str, args: &'a Document, key: &str) -> Result<&'a Document, Fail> {
    args.get_document(key)
        .map_err(|_| Fail::runner(format!("{op}: {key} (a document) is required")))
}

/// Options of type `T` from the arguments, without the positional `skip` keys, `session` and
/// `timeoutMS` (set on the operation apart). An option `T` does not know makes the test
/// unsupported (named).
pub(crate) fn options<T: serde::de::DeserializeOwned>(
    op: &str,
    args: &Document,
    skip: &[&str],
) -> Result<T, Fail> {
    let mut rest = args.clone();
    for k in skip {
        rest.remove(*k);
    }
    rest.remove("session");
    // Read by `op_timeout` and set on the operation.
    rest.remove("timeoutMS");

    bson::deserialize_from_document(rest)
        .map_err(|e| Fail::unsupported(format!("{op} options: {e}")))
}

pub(crate) fn req_str(op: &str, args: &Document, key: &str) -> Result<String, Fail> {
    args.get_str(key)
        .map(str::to_string)
        .map_err(|_| Fail::runner(format!("{op}: {key} (a string) is required")))
}

pub(crate) fn pipeline(op: &str, args: &Document) -> Result<Vec<Document>, Fail> {
    args.get_array("pipeline")
        .map_err(|_| Fail::runner(format!("{op}: pipeline is required")))?
        .iter()
        .map(|d| {
            d.as_document()
                .cloned()
                .ok_or_else(|| Fail::runner(format!("{op}: pipeline stages are documents")))
        })
        .collect()
}

pub(crate) fn update_of(op: &str, args: &Document) -> Result<UpdateModifications, Fail> {
    let u = args
        .get("update")
        .cloned()
        .ok_or_else(|| Fail::runner(format!("{op}: update is required")))?;
    UpdateModifications::from_bson(u).map_err(|e| Fail::runner(format!("{op}: {e}")))
}
