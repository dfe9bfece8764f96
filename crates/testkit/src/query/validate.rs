//! Parse-time checks of a query filter, as mongod parses a filter before it reads a
//! document: an unknown operator, a malformed `$and` / `$or` / `$nor`, a bad operator argument
//! or a `$where` the testkit cannot run fails the command even on an empty or missing
//! collection. Evaluation (`filter.rs`) then assumes a checked filter.

use bson::{Bson, Document};

use super::filter::is_operator_doc;
use super::where_js::parse_where;
use crate::error::{CmdResult, CommandError};

/// Where a filter is used: `$where` is refused in aggregation `$match` and inside
/// `$elemMatch` (mongod: "$where is not allowed in this context").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FilterContext {
    /// A command's query (`find`, `update`'s `q`, `count`, …).
    Query,
    /// An aggregation `$match`, `$elemMatch`'s inner filter.
    NoWhere,
}

/// Field operators the evaluator implements.
const FIELD_OPERATORS: &[&str] = &[
    "$eq",
    "$ne",
    "$gt",
    "$gte",
    "$lt",
    "$lte",
    "$in",
    "$nin",
    "$exists",
    "$not",
    "$size",
    "$all",
    "$elemMatch",
    "$type",
    "$comment",
];

/// Operators mongod has and the testkit does not evaluate: refused with a message that says
/// so rather than mongod's "unknown operator".
const UNIMPLEMENTED: &[&str] = &[
    "$jsonSchema",
    "$text",
    "$alwaysTrue",
    "$alwaysFalse",
    "$sampleRate",
    "$regex",
    "$options",
    "$mod",
    "$bitsAllSet",
    "$bitsAllClear",
    "$bitsAnySet",
    "$bitsAnyClear",
    "$geoWithin",
    "$geoIntersects",
    "$near",
    "$nearSphere",
    "$within",
];

fn unimplemented(op: &str) -> CommandError {
    CommandError::bad_value(format!("the testkit does not implement the {op} operator"))
}

/// Checks a whole filter.
pub(crate) fn check_filter(filter: &Document, ctx: FilterContext) -> CmdResult<()> {
    for (key, cond) in filter {
        match key.as_str() {
            "$and" | "$or" | "$nor" => {
                for f in filter_list(cond, key)? {
                    check_filter(f, ctx)?;
                }
            }
            "$comment" => {}
            "$expr" => super::expr_ops::check_expr(cond)?,
            "$where" => {
                if ctx == FilterContext::NoWhere {
                    return Err(CommandError::bad_value(
                        "$where is not allowed in this context",
                    ));
                }
                parse_where(cond)?;
            }
            k if UNIMPLEMENTED.contains(&k) => return Err(unimplemented(k)),
            k if k.starts_with('$') => {
                return Err(CommandError::bad_value(format!(
                    "unknown top level operator: {k}. If you have a field name that starts \
                     with a '$' symbol, consider using $getField or $setField."
                )));
            }
            _ => {
                if let Some(ops) = is_operator_doc(cond) {
                    check_operators(ops)?;
                }
            }
        }
    }
    Ok(())
}

/// The entries of `$and` / `$or` / `$nor`: a non-empty array of documents.
pub(crate) fn filter_list<'a>(v: &'a Bson, op: &str) -> CmdResult<Vec<&'a Document>> {
    let Bson::Array(arr) = v else {
        return Err(CommandError::bad_value(format!("{op} must be an array")));
    };
    if arr.is_empty() {
        return Err(CommandError::bad_value(format!(
            "{op} argument must be a non-empty array"
        )));
    }
    arr.iter()
        .map(|e| {
            e.as_document().ok_or_else(|| {
                CommandError::bad_value(format!("{op} argument's entries must be objects"))
            })
        })
        .collect()
}

/// Checks an operator document (`{$gt: 1, $lt: 5}`): every key must be an operator.
fn check_operators(ops: &Document) -> CmdResult<()> {
    for (op, arg) in ops {
        check_operator(op, arg)?;
    }
    Ok(())
}

fn check_operator(op: &str, arg: &Bson) -> CmdResult<()> {
    match op {
        "$in" | "$nin" | "$all" => {
            if !matches!(arg, Bson::Array(_)) {
                return Err(CommandError::bad_value(format!("{op} needs an array")));
            }
        }
        "$not" => match arg {
            Bson::Document(inner) if inner.is_empty() => {
                return Err(CommandError::bad_value("$not cannot be empty"));
            }
            Bson::Document(inner) => check_operators(inner)?,
            _ => return Err(CommandError::bad_value("$not needs a regex or a document")),
        },
        "$elemMatch" => match arg {
            Bson::Document(inner) if is_operator_doc(arg).is_some() => check_operators(inner)?,
            Bson::Document(inner) => check_filter(inner, FilterContext::NoWhere)?,
            _ => return Err(CommandError::bad_value("$elemMatch needs an Object")),
        },
        "$size" => {
            if super::compare::as_int(arg).is_none() {
                return Err(CommandError::bad_value("$size needs a number"));
            }
        }
        k if FIELD_OPERATORS.contains(&k) => {}
        k if UNIMPLEMENTED.contains(&k) => return Err(unimplemented(k)),
        k => return Err(CommandError::bad_value(format!("unknown operator: {k}"))),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::codes;
    use bson::doc;

    #[test]
    fn filters_are_checked_before_any_document() {
        let q = FilterContext::Query;
        assert!(check_filter(&doc! { "a": 1, "$or": [{ "b": { "$gt": 1 } }] }, q).is_ok());
        assert!(check_filter(&doc! { "$where": "sleep(1) || true" }, q).is_ok());
        for bad in [
            doc! { "$unsupportedQueryOperator": 1 },
            doc! { "$or": true },
            doc! { "$and": [] },
            doc! { "a": { "$bogus": 1 } },
            doc! { "a": { "$gt": 1, "b": 1 } },
            doc! { "a": { "$in": 1 } },
            doc! { "$or": [{ "a": { "$not": { "$nope": 1 } } }] },
            doc! { "a": { "$elemMatch": { "$where": "true" } } },
            doc! { "a": { "$regex": "x" } },
        ] {
            let err = check_filter(&bad, q).unwrap_err();
            assert_eq!(err.code, codes::BAD_VALUE, "{bad}");
        }
        assert_eq!(
            check_filter(&doc! { "$where": "true" }, FilterContext::NoWhere)
                .unwrap_err()
                .errmsg,
            "$where is not allowed in this context"
        );
        assert!(
            check_filter(&doc! { "x": { "$unknown": 1 } }, q)
                .unwrap_err()
                .errmsg
                .starts_with("unknown operator: $unknown")
        );
    }
}
