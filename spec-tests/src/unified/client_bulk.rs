//! The `clientBulkWrite` operation (the client-level bulk write): its `models` read in the
//! format's shape (`{insertOne: {namespace, document}}`, …), its options (`ordered`,
//! `verboseResults`, `comment`, `let`, `bypassDocumentValidation`, `rawData`, and
//! `writeConcern`, which the options read apart), and its result as a root document with the
//! specification's names; and how `expectError` reads a client bulk write's error
//! (`writeErrors`, `writeConcernErrors`, the partial result).

use bson::{Bson, Document, doc};
use mongo_client::{
    ClientBulkWriteError, ClientBulkWriteOptions, ClientWriteModel, WriteConcernError, WriteError,
};

use super::Fail;
use super::entities::write_concern;
use super::matching::{self, Lookup};
use super::ops::{OpError, Value};

/// Runs `clientBulkWrite` on `client`.
pub(crate) async fn run(
    client: &mongo_client::Client,
    session: Option<&mut mongo_client::ClientSession>,
    args: &Document,
) -> Result<Value, OpError> {
    let models: Vec<ClientWriteModel> = args
        .get_array("models")
        .map_err(|_| Fail::runner("clientBulkWrite: models is required"))?
        .iter()
        .map(|m| {
            bson::deserialize_from_bson(m.clone())
                .map_err(|e| Fail::unsupported(format!("clientBulkWrite model {m}: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let mut rest = args.clone();
    rest.remove("models");
    let wc = rest.remove("writeConcern");
    rest.remove("session");
    if rest.contains_key("timeoutMS") {
        return Err(Fail::unsupported(
            "clientBulkWrite with timeoutMS (client-side operation timeouts, issue 21)",
        )
        .into());
    }
    let mut options: ClientBulkWriteOptions = bson::deserialize_from_document(rest)
        .map_err(|e| Fail::unsupported(format!("clientBulkWrite options: {e}")))?;
    if let Some(wc) = wc {
        options.write_concern = Some(write_concern(&wc)?);
    }
    let result = client
        .bulk_write(models)
        .with_options(options)
        .session(session)
        .await?;
    bson::serialize_to_document(&result)
        .map(Value::Root)
        .map_err(|e| Fail::runner(format!("the result cannot be written as BSON: {e}")).into())
}

/// A write error as the format shows it.
fn write_error_doc(e: &WriteError) -> Document {
    let mut d = doc! {"code": e.code, "message": e.message.clone()};
    if let Some(n) = &e.code_name {
        d.insert("codeName", n.clone());
    }
    if let Some(info) = &e.details {
        d.insert("details", info.clone());
    }
    d
}

/// A write concern error as the format shows it.
fn write_concern_error_doc(e: &WriteConcernError) -> Document {
    let mut d = doc! {"code": e.code, "message": e.message.clone()};
    if !e.code_name.is_empty() {
        d.insert("codeName", e.code_name.clone());
    }
    if let Some(info) = &e.details {
        d.insert("details", info.clone());
    }
    d
}

/// Checks `expectError.writeErrors`: exactly the expected indexes, each matching.
pub(crate) fn check_write_errors(
    expected: &Bson,
    failure: Option<&ClientBulkWriteError>,
    lookup: &dyn Lookup,
) -> Result<(), String> {
    let expected = expected
        .as_document()
        .ok_or("writeErrors must be a document")?;
    let actual = failure.map(|f| &f.write_errors);
    let count = actual.map_or(0, std::collections::BTreeMap::len);
    if count != expected.len() {
        return Err(format!(
            "writeErrors: expected {} entries, got {count}",
            expected.len()
        ));
    }
    for (k, want) in expected {
        let index: usize = k
            .parse()
            .map_err(|_| format!("writeErrors key {k} is not an index"))?;
        let got = actual
            .and_then(|a| a.get(&index))
            .ok_or_else(|| format!("writeErrors: no error for model {index}"))?;
        matching::matches(
            want,
            Some(&Bson::Document(write_error_doc(got))),
            true,
            lookup,
        )
        .map_err(|m| format!("writeErrors[{index}]: {m}"))?;
    }
    Ok(())
}

/// Checks `expectError.writeConcernErrors`: the same number, each matching in order.
pub(crate) fn check_write_concern_errors(
    expected: &Bson,
    failure: Option<&ClientBulkWriteError>,
    lookup: &dyn Lookup,
) -> Result<(), String> {
    let expected = expected
        .as_array()
        .ok_or("writeConcernErrors must be an array")?;
    let actual = failure.map_or(&[][..], |f| f.write_concern_errors.as_slice());
    if actual.len() != expected.len() {
        return Err(format!(
            "writeConcernErrors: expected {}, got {}",
            expected.len(),
            actual.len()
        ));
    }
    for (i, (want, got)) in expected.iter().zip(actual).enumerate() {
        matching::matches(
            want,
            Some(&Bson::Document(write_concern_error_doc(got))),
            true,
            lookup,
        )
        .map_err(|m| format!("writeConcernErrors[{i}]: {m}"))?;
    }
    Ok(())
}
