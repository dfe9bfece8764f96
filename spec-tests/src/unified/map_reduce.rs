//! The collection operation `mapReduce`, with its output inline (the only form the client
//! has): the map and reduce functions as JavaScript code, the `{_id, value}` results.

use std::time::Duration;

use bson::{Bson, Document};
use mongo_client::ClientSession;

use super::Fail;
use super::ops::{OpResult, Value, allow};

pub(crate) async fn run(
    coll: &mongo_client::Collection,
    session: Option<&mut ClientSession>,
    args: &Document,
    timeout: Option<Duration>,
) -> OpResult {
    allow("mapReduce", args, &["map", "reduce", "out", "timeoutMS"])?;
    let code = |key: &str| match args.get(key) {
        Some(Bson::JavaScriptCode(c) | Bson::String(c)) => Ok(c.clone()),
        _ => Err(Fail::runner(format!(
            "mapReduce: {key} must be JavaScript code"
        ))),
    };
    let (map, reduce) = (code("map")?, code("reduce")?);
    if !args
        .get_document("out")
        .is_ok_and(|out| out.contains_key("inline"))
    {
        return Err(
            Fail::unsupported(format!("mapReduce with an output collection: {args}")).into(),
        );
    }
    let results = coll
        .map_reduce(map, reduce)
        .session(session)
        .timeout(timeout)
        .await?;
    Ok(Value::Bson(Bson::Array(
        results.into_iter().map(Bson::Document).collect(),
    )))
}
