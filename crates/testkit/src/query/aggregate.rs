//! The aggregation pipeline: `$match`, `$sort`, `$limit`, `$skip`, `$project`, `$unset`,
//! `$addFields` / `$set`, `$replaceRoot` / `$replaceWith`, `$count`, `$unwind` and `$group`
//! (in `group.rs`).

use bson::{Bson, Document};

use super::compare::{as_int, sort_docs_in, truthy};
use super::context::QueryCtx;
use super::expr::eval;
use super::filter::matches_in;
use super::group::group;
use super::path::{get_path, remove_path, set_path};
use super::projection::project_in;
use super::validate::{FilterContext, check_filter};
use crate::error::{CmdResult, CommandError, codes};

/// Runs an aggregation pipeline over `docs` (simple collation, no variables).
#[cfg(test)]
pub(crate) fn run_pipeline(docs: Vec<Document>, pipeline: &[Bson]) -> CmdResult<Vec<Document>> {
    run_pipeline_in(docs, pipeline, &QueryCtx::default())
}

/// Runs an aggregation pipeline over `docs` in a command's context.
pub(crate) fn run_pipeline_in(
    mut docs: Vec<Document>,
    pipeline: &[Bson],
    ctx: &QueryCtx,
) -> CmdResult<Vec<Document>> {
    for stage in pipeline {
        let Bson::Document(stage) = stage else {
            return Err(CommandError::type_mismatch(
                "Each element of the 'pipeline' array must be an object",
            ));
        };
        let Some((name, arg)) = stage.iter().next() else {
            return Err(CommandError::bad_value(
                "A pipeline stage specification object must contain exactly one field.",
            ));
        };
        docs = match name.as_str() {
            "$match" => {
                let f = stage_doc(arg, name)?;
                check_filter(f, FilterContext::NoWhere)?;
                let mut out = Vec::new();
                for d in docs {
                    if matches_in(&d, f, ctx)? {
                        out.push(d);
                    }
                }
                out
            }
            "$sort" => {
                sort_docs_in(&mut docs, stage_doc(arg, name)?, ctx.collation.as_ref())?;
                docs
            }
            "$limit" => {
                let n = stage_count(arg, name)?;
                docs.truncate(n);
                docs
            }
            "$skip" => {
                let n = stage_count(arg, name)?;
                docs.into_iter().skip(n).collect()
            }
            "$project" => {
                let spec = stage_doc(arg, name)?;
                docs.iter()
                    .map(|d| project_in(d, spec, ctx))
                    .collect::<CmdResult<_>>()?
            }
            "$unset" => {
                let fields: Vec<String> = match arg {
                    Bson::String(s) => vec![s.clone()],
                    Bson::Array(a) => a
                        .iter()
                        .filter_map(|e| e.as_str().map(String::from))
                        .collect(),
                    _ => return Err(CommandError::bad_value("$unset needs a string or an array")),
                };
                for d in &mut docs {
                    for f in &fields {
                        remove_path(d, f);
                    }
                }
                docs
            }
            "$addFields" | "$set" => {
                let spec = stage_doc(arg, name)?;
                let mut out = Vec::with_capacity(docs.len());
                for mut d in docs {
                    for (k, e) in spec {
                        match eval(&d, e, ctx)? {
                            Some(v) => set_path(&mut d, k, v)?,
                            None => {
                                remove_path(&mut d, k);
                            }
                        }
                    }
                    out.push(d);
                }
                out
            }
            "$count" => {
                let Bson::String(field) = arg else {
                    return Err(CommandError::bad_value(
                        "the count field must be a non-empty string",
                    ));
                };
                if docs.is_empty() {
                    Vec::new()
                } else {
                    let n = i32::try_from(docs.len()).unwrap_or(i32::MAX);
                    vec![bson::doc! { field.clone(): n }]
                }
            }
            "$unwind" => {
                let (path, keep_empty) = match arg {
                    Bson::String(s) => (s.clone(), false),
                    Bson::Document(d) => (
                        d.get_str("path")
                            .map_err(|_| CommandError::bad_value("$unwind needs a path"))?
                            .to_string(),
                        d.get("preserveNullAndEmptyArrays").is_some_and(truthy),
                    ),
                    _ => return Err(CommandError::bad_value("$unwind needs a path")),
                };
                let path = path.strip_prefix('$').unwrap_or(&path).to_string();
                let mut out = Vec::new();
                for d in docs {
                    match get_path(&d, &path).cloned() {
                        Some(Bson::Array(a)) if !a.is_empty() => {
                            for e in a {
                                let mut c = d.clone();
                                set_path(&mut c, &path, e)?;
                                out.push(c);
                            }
                        }
                        Some(Bson::Array(_)) | None | Some(Bson::Null) => {
                            if keep_empty {
                                out.push(d);
                            }
                        }
                        Some(_) => out.push(d),
                    }
                }
                out
            }
            "$group" => group(docs, stage_doc(arg, name)?, ctx)?,
            "$replaceRoot" | "$replaceWith" => {
                let expr = if name == "$replaceRoot" {
                    stage_doc(arg, name)?.get("newRoot").ok_or_else(|| {
                        CommandError::new(
                            40231,
                            "Location40231",
                            "no newRoot specified for the $replaceRoot stage",
                        )
                    })?
                } else {
                    arg
                };
                let mut out = Vec::with_capacity(docs.len());
                for d in &docs {
                    match eval(d, expr, ctx)? {
                        Some(Bson::Document(root)) => out.push(root),
                        other => {
                            return Err(CommandError::new(
                                40228,
                                "Location40228",
                                format!(
                                    "'newRoot' expression must evaluate to an object, but resulting value was: {}",
                                    other.map_or_else(|| "MISSING".to_string(), |v| v.to_string())
                                ),
                            ));
                        }
                    }
                }
                out
            }
            "$documents" | "$collStats" | "$listLocalSessions" | "$listSessions" => {
                return Err(CommandError::new(
                    40602,
                    "Location40602",
                    format!("{name} is only valid as the first stage in a pipeline"),
                ));
            }
            other => {
                return Err(CommandError::new(
                    codes::UNRECOGNIZED_STAGE,
                    "Location40324",
                    format!("Unrecognized pipeline stage name: '{other}'"),
                ));
            }
        };
    }
    Ok(docs)
}

fn stage_doc<'a>(arg: &'a Bson, name: &str) -> CmdResult<&'a Document> {
    arg.as_document().ok_or_else(|| {
        CommandError::bad_value(format!("the {name} stage specification must be an object"))
    })
}

fn stage_count(arg: &Bson, name: &str) -> CmdResult<usize> {
    as_int(arg)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| CommandError::bad_value(format!("invalid argument to {name} stage")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;
    #[test]
    fn pipeline_stages() {
        let docs = vec![
            doc! { "g": "a", "v": 1 },
            doc! { "g": "b", "v": 2 },
            doc! { "g": "a", "v": 3 },
        ];
        let out = run_pipeline(
            docs.clone(),
            &[
                Bson::Document(doc! { "$match": { "v": { "$gte": 1 } } }),
                Bson::Document(
                    doc! { "$group": { "_id": "$g", "n": { "$sum": 1 }, "t": { "$sum": "$v" } } },
                ),
                Bson::Document(doc! { "$sort": { "_id": -1 } }),
            ],
        )
        .unwrap();
        assert_eq!(
            out,
            vec![
                doc! { "_id": "b", "n": 1, "t": 2 },
                doc! { "_id": "a", "n": 2, "t": 4 }
            ]
        );
        let out = run_pipeline(
            docs,
            &[
                Bson::Document(doc! { "$skip": 1 }),
                Bson::Document(doc! { "$limit": 1 }),
                Bson::Document(doc! { "$project": { "_id": 0, "v": 1 } }),
            ],
        )
        .unwrap();
        assert_eq!(out, vec![doc! { "v": 2 }]);
        assert_eq!(
            run_pipeline(vec![], &[Bson::Document(doc! { "$bogus": 1 })])
                .unwrap_err()
                .code,
            codes::UNRECOGNIZED_STAGE
        );
    }
}
