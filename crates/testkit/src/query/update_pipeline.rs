//! Pipeline-style updates (`u: [stages]`): the stages mongod allows in an update (`$addFields`
//! / `$set`, `$project`, `$unset`, `$replaceRoot` / `$replaceWith`) run over the one document.
//! As on mongod, an unknown stage name fails the whole command (mongod parses the pipeline
//! while it checks authorization, before any statement runs); a known stage that an update
//! may not use fails its statement.

use bson::{Bson, Document};

use super::aggregate::run_pipeline_in;
use super::context::QueryCtx;
use crate::error::{CmdResult, CommandError, codes};

/// The stages an update pipeline may use.
const UPDATE_STAGES: &[&str] = &[
    "$addFields",
    "$set",
    "$project",
    "$unset",
    "$replaceRoot",
    "$replaceWith",
];

/// Other stage names mongod knows (an update refuses them per statement).
const OTHER_STAGES: &[&str] = &[
    "$match",
    "$sort",
    "$limit",
    "$skip",
    "$count",
    "$unwind",
    "$group",
    "$lookup",
    "$graphLookup",
    "$facet",
    "$bucket",
    "$bucketAuto",
    "$sortByCount",
    "$sample",
    "$out",
    "$merge",
    "$documents",
    "$collStats",
    "$indexStats",
    "$listLocalSessions",
    "$listSessions",
    "$currentOp",
    "$geoNear",
    "$redact",
    "$unionWith",
    "$densify",
    "$fill",
    "$setWindowFields",
    "$changeStream",
    "$search",
    "$vectorSearch",
];

/// The command-level check of an update pipeline: each stage a one-field document naming a
/// stage mongod knows.
pub(crate) fn check_update_pipeline(stages: &[Bson]) -> CmdResult<()> {
    for stage in stages {
        let Bson::Document(stage) = stage else {
            return Err(CommandError::type_mismatch(
                "Each element of the 'pipeline' array must be an object",
            ));
        };
        let mut keys = stage.keys();
        let (Some(name), None) = (keys.next(), keys.next()) else {
            return Err(CommandError::new(
                40323,
                "Location40323",
                "A pipeline stage specification object must contain exactly one field.",
            ));
        };
        if !UPDATE_STAGES.contains(&name.as_str()) && !OTHER_STAGES.contains(&name.as_str()) {
            return Err(CommandError::new(
                codes::UNRECOGNIZED_STAGE,
                "Location40324",
                format!("Unrecognized pipeline stage name: '{name}'"),
            ));
        }
    }
    Ok(())
}

/// Runs an update pipeline over `doc`; whether it changed. `_id` may not change.
pub(crate) fn apply_pipeline_update(
    doc: &mut Document,
    stages: &[Bson],
    ctx: &QueryCtx,
) -> CmdResult<bool> {
    for stage in stages.iter().filter_map(Bson::as_document) {
        if let Some(name) = stage.keys().next() {
            if !UPDATE_STAGES.contains(&name.as_str()) {
                return Err(CommandError::new(
                    codes::INVALID_OPTIONS,
                    "InvalidOptions",
                    format!("{name} is not allowed to be used within an update"),
                ));
            }
        }
    }
    let out = run_pipeline_in(vec![doc.clone()], stages, ctx)?;
    let Some(mut new) = out.into_iter().next() else {
        return Ok(false);
    };
    match (doc.get("_id"), new.get("_id")) {
        (Some(old), Some(now)) if old != now => {
            return Err(CommandError::new(
                codes::IMMUTABLE_FIELD,
                "ImmutableField",
                "Performing an update on the path '_id' would modify the immutable field '_id'",
            ));
        }
        (Some(old), None) => {
            // mongod keeps the _id a pipeline dropped (first, as stored).
            let mut with_id = Document::new();
            with_id.insert("_id", old.clone());
            with_id.extend(new);
            new = with_id;
        }
        _ => {}
    }
    if new == *doc {
        return Ok(false);
    }
    *doc = new;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn update_pipelines() {
        let p = |d: Document| vec![Bson::Document(d)];
        let apply_pipeline_update =
            |d: &mut Document, s: &[Bson]| apply_pipeline_update(d, s, &QueryCtx::default());
        assert_eq!(
            check_update_pipeline(&p(doc! { "$invalidOperator": true }))
                .unwrap_err()
                .code,
            codes::UNRECOGNIZED_STAGE
        );
        assert!(check_update_pipeline(&p(doc! { "$match": {} })).is_ok());
        let mut d = doc! { "_id": 1, "a": 1 };
        assert!(apply_pipeline_update(&mut d, &p(doc! { "$set": { "b": "$a" } })).unwrap());
        assert_eq!(d, doc! { "_id": 1, "a": 1, "b": 1 });
        assert!(apply_pipeline_update(&mut d, &p(doc! { "$replaceWith": { "c": 2 } })).unwrap());
        assert_eq!(d, doc! { "_id": 1, "c": 2 });
        assert_eq!(
            apply_pipeline_update(&mut d, &p(doc! { "$match": {} }))
                .unwrap_err()
                .code,
            codes::INVALID_OPTIONS
        );
        assert_eq!(
            apply_pipeline_update(&mut d, &p(doc! { "$set": { "_id": 2 } }))
                .unwrap_err()
                .code,
            codes::IMMUTABLE_FIELD
        );
    }
}
