//! Query filters: whether a document matches a filter, with the logical operators (`$and`,
//! `$or`, `$nor`) and the field operators (comparisons, `$in`, `$exists`, `$not`, `$size`,
//! `$all`, `$elemMatch`, `$type`), `$where` (`where_js.rs`) and `$expr` (an aggregation
//! expression, with the command's `let` variables). Values compare under the command's
//! collation. Commands check a filter with `validate.rs` before they evaluate it.

use std::cmp::Ordering;

use bson::{Bson, Document};

use super::compare::{as_int, truthy, type_rank};
use super::context::QueryCtx;
use super::expr::eval;
use super::path::lookup;
use super::validate::filter_list;
use super::where_js::eval_where;
use crate::error::{CmdResult, CommandError};

/// Candidates for comparison: each value, plus the elements of array values.
fn candidates<'a>(values: &[&'a Bson]) -> Vec<&'a Bson> {
    let mut out = Vec::new();
    for v in values {
        out.push(*v);
        if let Bson::Array(a) = v {
            out.extend(a.iter());
        }
    }
    out
}

/// Whether `doc` matches the query `filter` (simple collation, no variables).
pub(crate) fn matches(doc: &Document, filter: &Document) -> CmdResult<bool> {
    matches_in(doc, filter, &QueryCtx::default())
}

/// Whether `doc` matches the query `filter` in a command's context.
pub(crate) fn matches_in(doc: &Document, filter: &Document, ctx: &QueryCtx) -> CmdResult<bool> {
    for (key, cond) in filter {
        let ok = match key.as_str() {
            "$and" => {
                let mut all = true;
                for f in filter_list(cond, "$and")? {
                    if !matches_in(doc, f, ctx)? {
                        all = false;
                        break;
                    }
                }
                all
            }
            "$or" => {
                let mut any = false;
                for f in filter_list(cond, "$or")? {
                    if matches_in(doc, f, ctx)? {
                        any = true;
                        break;
                    }
                }
                any
            }
            "$nor" => {
                let mut any = false;
                for f in filter_list(cond, "$nor")? {
                    if matches_in(doc, f, ctx)? {
                        any = true;
                        break;
                    }
                }
                !any
            }
            "$comment" => true,
            "$where" => eval_where(cond)?,
            "$expr" => eval(doc, cond, ctx)?.as_ref().is_some_and(truthy),
            k if k.starts_with('$') => {
                return Err(CommandError::bad_value(format!(
                    "unknown top level operator: {k}"
                )));
            }
            path => field_matches(doc, path, cond, ctx)?,
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

pub(super) fn is_operator_doc(cond: &Bson) -> Option<&Document> {
    match cond {
        Bson::Document(d) if d.keys().next().is_some_and(|k| k.starts_with('$')) => Some(d),
        _ => None,
    }
}

fn field_matches(doc: &Document, path: &str, cond: &Bson, ctx: &QueryCtx) -> CmdResult<bool> {
    let values = lookup(doc, path);
    match is_operator_doc(cond) {
        Some(ops) => {
            for (op, arg) in ops {
                if !operator_matches_in(&values, op, arg, ctx)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        None => Ok(eq_matches(&values, cond, ctx)),
    }
}

fn eq_matches(values: &[&Bson], target: &Bson, ctx: &QueryCtx) -> bool {
    if matches!(target, Bson::Null) && values.is_empty() {
        return true;
    }
    candidates(values).iter().any(|c| ctx.equal(c, target))
}

/// Whether `values` (a path's values) satisfy the field operator `op` (simple collation).
pub(super) fn operator_matches(values: &[&Bson], op: &str, arg: &Bson) -> CmdResult<bool> {
    operator_matches_in(values, op, arg, &QueryCtx::default())
}

fn operator_matches_in(values: &[&Bson], op: &str, arg: &Bson, ctx: &QueryCtx) -> CmdResult<bool> {
    let cmp_any = |pred: fn(Ordering) -> bool| {
        candidates(values)
            .iter()
            .any(|c| type_rank(c) == type_rank(arg) && pred(ctx.compare(c, arg)))
    };
    Ok(match op {
        "$eq" => eq_matches(values, arg, ctx),
        "$ne" => !eq_matches(values, arg, ctx),
        "$gt" => cmp_any(|o| o == Ordering::Greater),
        "$gte" => cmp_any(|o| o != Ordering::Less),
        "$lt" => cmp_any(|o| o == Ordering::Less),
        "$lte" => cmp_any(|o| o != Ordering::Greater),
        "$in" | "$nin" => {
            let Bson::Array(list) = arg else {
                return Err(CommandError::bad_value(format!("{op} needs an array")));
            };
            let found = list.iter().any(|t| eq_matches(values, t, ctx));
            if op == "$in" { found } else { !found }
        }
        "$exists" => truthy(arg) != values.is_empty(),
        "$not" => {
            let Bson::Document(inner) = arg else {
                return Err(CommandError::bad_value("$not needs a regex or a document"));
            };
            let mut all = true;
            for (iop, iarg) in inner {
                if !operator_matches_in(values, iop, iarg, ctx)? {
                    all = false;
                    break;
                }
            }
            !all
        }
        "$size" => {
            let want =
                as_int(arg).ok_or_else(|| CommandError::bad_value("$size needs a number"))?;
            values.iter().any(|v| match v {
                Bson::Array(a) => i64::try_from(a.len()).is_ok_and(|n| n == want),
                _ => false,
            })
        }
        "$all" => {
            let Bson::Array(list) = arg else {
                return Err(CommandError::bad_value("$all needs an array"));
            };
            !list.is_empty() && list.iter().all(|t| eq_matches(values, t, ctx))
        }
        "$elemMatch" => {
            let Bson::Document(inner) = arg else {
                return Err(CommandError::bad_value("$elemMatch needs an Object"));
            };
            let mut any = false;
            for v in values {
                let Bson::Array(arr) = v else { continue };
                for e in arr {
                    let ok = if inner.keys().next().is_some_and(|k| k.starts_with('$')) {
                        let mut all = true;
                        for (iop, iarg) in inner {
                            if !operator_matches_in(&[e], iop, iarg, ctx)? {
                                all = false;
                                break;
                            }
                        }
                        all
                    } else if let Bson::Document(ed) = e {
                        matches_in(ed, inner, ctx)?
                    } else {
                        false
                    };
                    if ok {
                        any = true;
                        break;
                    }
                }
                if any {
                    break;
                }
            }
            any
        }
        "$type" => {
            let names: Vec<&Bson> = match arg {
                Bson::Array(a) => a.iter().collect(),
                other => vec![other],
            };
            candidates(values)
                .iter()
                .any(|c| names.iter().any(|n| type_matches(c, n)))
        }
        "$comment" => true,
        other => {
            return Err(CommandError::bad_value(format!(
                "unknown operator: {other}"
            )));
        }
    })
}

fn type_matches(v: &Bson, name: &Bson) -> bool {
    let alias = match v {
        Bson::Double(_) => ("double", 1),
        Bson::String(_) => ("string", 2),
        Bson::Document(_) => ("object", 3),
        Bson::Array(_) => ("array", 4),
        Bson::Binary(_) => ("binData", 5),
        Bson::ObjectId(_) => ("objectId", 7),
        Bson::Boolean(_) => ("bool", 8),
        Bson::DateTime(_) => ("date", 9),
        Bson::Null => ("null", 10),
        Bson::Int32(_) => ("int", 16),
        Bson::Int64(_) => ("long", 18),
        Bson::Decimal128(_) => ("decimal", 19),
        _ => ("other", -1),
    };
    match name {
        Bson::String(s) if s == "number" => type_rank(v) == 2,
        Bson::String(s) => s == alias.0,
        n => as_int(n).is_some_and(|n| n == alias.1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::codes;
    use bson::doc;
    #[test]
    fn comparison_operators_and_dotted_paths() {
        let d =
            doc! { "a": 5, "b": { "c": "x" }, "arr": [1, 2, 3], "subs": [{ "k": 1 }, { "k": 7 }] };
        assert!(matches(&d, &doc! { "a": 5.0 }).unwrap());
        assert!(matches(&d, &doc! { "a": { "$gt": 4, "$lte": 5 } }).unwrap());
        assert!(!matches(&d, &doc! { "a": { "$gt": "4" } }).unwrap());
        assert!(matches(&d, &doc! { "b.c": "x" }).unwrap());
        assert!(matches(&d, &doc! { "arr": 2 }).unwrap());
        assert!(matches(&d, &doc! { "subs.k": 7 }).unwrap());
        assert!(matches(&d, &doc! { "missing": null }).unwrap());
        assert!(matches(&d, &doc! { "missing": { "$exists": false } }).unwrap());
        assert!(!matches(&d, &doc! { "a": { "$exists": false } }).unwrap());
        assert!(matches(&d, &doc! { "a": { "$in": [1, 5] }, "arr": { "$nin": [9] } }).unwrap());
        assert!(matches(&d, &doc! { "$or": [{ "a": 1 }, { "a": 5 }] }).unwrap());
        assert!(!matches(&d, &doc! { "$and": [{ "a": 5 }, { "a": { "$ne": 5 } }] }).unwrap());
        assert!(matches(&d, &doc! { "a": { "$not": { "$lt": 3 } } }).unwrap());
        assert!(
            matches(
                &d,
                &doc! { "subs": { "$elemMatch": { "k": { "$gt": 5 } } } }
            )
            .unwrap()
        );
        assert_eq!(
            matches(&d, &doc! { "$bogus": "1" }).unwrap_err().code,
            codes::BAD_VALUE
        );
        assert!(matches(&d, &doc! { "$where": "sleep(0) || true" }).unwrap());
        assert!(!matches(&d, &doc! { "$where": "false" }).unwrap());
    }

    #[test]
    fn expr_let_and_collation() {
        let d = doc! { "_id": 1, "x": "ping", "tags": ["A", "b"] };
        let ctx = QueryCtx::from_parts(
            Some(&doc! { "locale": "en_US", "strength": 2 }),
            Some(&doc! { "id": 1 }),
        )
        .unwrap();
        let m = |f: Document| matches_in(&d, &f, &ctx).unwrap();
        assert!(m(doc! { "$expr": { "$eq": ["$_id", "$$id"] } }));
        assert!(!m(doc! { "$expr": { "$eq": ["$_id", 2] } }));
        assert!(m(doc! { "x": "PING" }));
        assert!(m(doc! { "x": { "$in": ["PiNg"] } }));
        assert!(m(doc! { "tags": "a" }));
        assert!(m(doc! { "x": { "$gt": "PIN", "$lt": "PONG" } }));
        assert!(!matches(&d, &doc! { "x": "PING" }).unwrap());
        assert!(matches(&d, &doc! { "$expr": { "$eq": ["$x", "ping"] } }).unwrap());
    }
}
