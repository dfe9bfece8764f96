//! The aggregation expression operators the testkit evaluates: `$literal`; comparisons
//! (`$eq`, `$ne`, `$gt`, `$gte`, `$lt`, `$lte`, `$cmp`, under the command's collation);
//! `$and`, `$or`, `$not`; `$cond`, `$ifNull`; `$add`, `$subtract`, `$multiply`,
//! `$divide`; `$concat`, `$toLower`, `$toUpper`; `$in`, `$size`, `$isArray`,
//! `$arrayElemAt`; `$mergeObjects`; `$getField`, `$setField`, `$unsetField`; `$rand`.
//! Any other operator is mongod's "Unrecognized expression" (168).

use std::cmp::Ordering;

use bson::{Bson, Document};

use super::compare::{as_f64, as_int, truthy};
use super::context::QueryCtx;
use super::expr::eval;
use crate::error::{CmdResult, CommandError};

/// InvalidPipelineOperator.
const INVALID_PIPELINE_OPERATOR: i32 = 168;

/// The operators [`eval_operator`] knows.
const OPERATORS: &[&str] = &[
    "$literal",
    "$eq",
    "$ne",
    "$gt",
    "$gte",
    "$lt",
    "$lte",
    "$cmp",
    "$and",
    "$or",
    "$not",
    "$cond",
    "$ifNull",
    "$add",
    "$multiply",
    "$subtract",
    "$divide",
    "$concat",
    "$toLower",
    "$toUpper",
    "$in",
    "$size",
    "$isArray",
    "$arrayElemAt",
    "$mergeObjects",
    "$getField",
    "$setField",
    "$unsetField",
    "$rand",
];

/// The parse-time check of an expression, as mongod makes it before reading a document: an
/// unknown operator anywhere in it is InvalidPipelineOperator (168).
pub(crate) fn check_expr(expr: &Bson) -> CmdResult<()> {
    match expr {
        Bson::Document(d) => match d.keys().next() {
            Some(op) if op.starts_with('$') => {
                if !OPERATORS.contains(&op.as_str()) {
                    return Err(unknown_operator(op));
                }
                match d.get(op) {
                    Some(_) if op == "$literal" => Ok(()),
                    Some(arg) => check_expr(arg),
                    None => Ok(()),
                }
            }
            _ => d.values().try_for_each(check_expr),
        },
        Bson::Array(items) => items.iter().try_for_each(check_expr),
        _ => Ok(()),
    }
}

fn unknown_operator(op: &str) -> CommandError {
    CommandError::new(
        INVALID_PIPELINE_OPERATOR,
        "InvalidPipelineOperator",
        format!("Unrecognized expression '{op}'"),
    )
}

/// Evaluates the operator `op` with its argument.
pub(super) fn eval_operator(
    doc: &Document,
    op: &str,
    arg: &Bson,
    ctx: &QueryCtx,
) -> CmdResult<Option<Bson>> {
    let value = match op {
        "$literal" => return Ok(Some(arg.clone())),
        "$eq" | "$ne" | "$gt" | "$gte" | "$lt" | "$lte" | "$cmp" => {
            let [a, b] = fixed::<2>(doc, op, arg, ctx)?;
            let o = compare_values(a.as_ref(), b.as_ref(), ctx);
            match op {
                "$eq" => Bson::Boolean(o == Ordering::Equal),
                "$ne" => Bson::Boolean(o != Ordering::Equal),
                "$gt" => Bson::Boolean(o == Ordering::Greater),
                "$gte" => Bson::Boolean(o != Ordering::Less),
                "$lt" => Bson::Boolean(o == Ordering::Less),
                "$lte" => Bson::Boolean(o != Ordering::Greater),
                _ => Bson::Int32(match o {
                    Ordering::Less => -1,
                    Ordering::Equal => 0,
                    Ordering::Greater => 1,
                }),
            }
        }
        "$and" => {
            for e in operands(arg) {
                if !eval(doc, e, ctx)?.as_ref().is_some_and(truthy) {
                    return Ok(Some(Bson::Boolean(false)));
                }
            }
            Bson::Boolean(true)
        }
        "$or" => {
            for e in operands(arg) {
                if eval(doc, e, ctx)?.as_ref().is_some_and(truthy) {
                    return Ok(Some(Bson::Boolean(true)));
                }
            }
            Bson::Boolean(false)
        }
        "$not" => {
            let [a] = fixed::<1>(doc, op, arg, ctx)?;
            Bson::Boolean(!a.as_ref().is_some_and(truthy))
        }
        "$cond" => return cond(doc, arg, ctx),
        "$ifNull" => {
            let items = operands(arg);
            if items.len() < 2 {
                return Err(CommandError::new(
                    16020,
                    "Location16020",
                    "Expression $ifNull takes at least 2 arguments",
                ));
            }
            for e in items {
                match eval(doc, e, ctx)? {
                    None | Some(Bson::Null | Bson::Undefined) => {}
                    some => return Ok(some),
                }
            }
            Bson::Null
        }
        "$add" | "$multiply" => {
            let mut acc = Bson::Int32(if op == "$add" { 0 } else { 1 });
            for v in all(doc, arg, ctx)? {
                match v {
                    None | Some(Bson::Null | Bson::Undefined) => return Ok(Some(Bson::Null)),
                    Some(n) => acc = arithmetic(op, &acc, &n)?,
                }
            }
            acc
        }
        "$subtract" | "$divide" => match fixed::<2>(doc, op, arg, ctx)? {
            [Some(a), Some(b)] if !is_nullish(&a) && !is_nullish(&b) => arithmetic(op, &a, &b)?,
            _ => Bson::Null,
        },
        "$concat" => {
            let mut out = String::new();
            for v in all(doc, arg, ctx)? {
                match v {
                    Some(Bson::String(s)) => out.push_str(&s),
                    None | Some(Bson::Null | Bson::Undefined) => return Ok(Some(Bson::Null)),
                    Some(other) => {
                        return Err(CommandError::new(
                            16702,
                            "Location16702",
                            format!(
                                "$concat only supports strings, not {:?}",
                                other.element_type()
                            ),
                        ));
                    }
                }
            }
            Bson::String(out)
        }
        "$toLower" | "$toUpper" => {
            let [a] = fixed::<1>(doc, op, arg, ctx)?;
            let s = match a {
                None | Some(Bson::Null | Bson::Undefined) => String::new(),
                Some(Bson::String(s)) => s,
                Some(other) => other.to_string(),
            };
            Bson::String(if op == "$toLower" {
                s.to_lowercase()
            } else {
                s.to_uppercase()
            })
        }
        "$in" => match fixed::<2>(doc, op, arg, ctx)? {
            [Some(v), Some(Bson::Array(list))] => {
                Bson::Boolean(list.iter().any(|e| ctx.compare(e, &v) == Ordering::Equal))
            }
            _ => {
                return Err(CommandError::new(
                    40081,
                    "Location40081",
                    "$in requires an array as a second argument",
                ));
            }
        },
        "$size" => match fixed::<1>(doc, op, arg, ctx)? {
            [Some(Bson::Array(a))] => Bson::Int32(i32::try_from(a.len()).unwrap_or(i32::MAX)),
            _ => {
                return Err(CommandError::new(
                    17124,
                    "Location17124",
                    "The argument to $size must be an array",
                ));
            }
        },
        "$isArray" => {
            let [a] = fixed::<1>(doc, op, arg, ctx)?;
            Bson::Boolean(matches!(a, Some(Bson::Array(_))))
        }
        "$arrayElemAt" => match fixed::<2>(doc, op, arg, ctx)? {
            [Some(Bson::Array(a)), Some(i)] => {
                let Some(i) = as_int(&i) else {
                    return Err(CommandError::new(
                        28690,
                        "Location28690",
                        "$arrayElemAt's second argument must be a numeric value",
                    ));
                };
                let len = i64::try_from(a.len()).unwrap_or(i64::MAX);
                let idx = if i < 0 { len + i } else { i };
                return Ok(usize::try_from(idx).ok().and_then(|i| a.get(i)).cloned());
            }
            [None | Some(Bson::Null), _] | [_, None | Some(Bson::Null)] => Bson::Null,
            _ => {
                return Err(CommandError::new(
                    28689,
                    "Location28689",
                    "$arrayElemAt's first argument must be an array",
                ));
            }
        },
        "$mergeObjects" => {
            let mut out = Document::new();
            for v in all(doc, arg, ctx)? {
                match v {
                    Some(Bson::Document(d)) => out.extend(d),
                    None | Some(Bson::Null) => {}
                    Some(_) => {
                        return Err(CommandError::new(
                            40400,
                            "Location40400",
                            "$mergeObjects requires object inputs",
                        ));
                    }
                }
            }
            Bson::Document(out)
        }
        "$getField" => return get_field(doc, arg, ctx),
        "$setField" | "$unsetField" => return set_field(doc, op, arg, ctx),
        "$rand" => {
            if !matches!(arg, Bson::Document(d) if d.is_empty()) {
                return Err(CommandError::new(
                    3040501,
                    "Location3040501",
                    "$rand does not currently accept arguments",
                ));
            }
            Bson::Double(rand::random::<f64>())
        }
        other => return Err(unknown_operator(other)),
    };
    Ok(Some(value))
}

/// Comparison as aggregation does it: missing sorts before null and equals only missing.
fn compare_values(a: Option<&Bson>, b: Option<&Bson>, ctx: &QueryCtx) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(Bson::MinKey)) => Ordering::Greater,
        (None, Some(_)) => Ordering::Less,
        (Some(Bson::MinKey), None) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => ctx.compare(x, y),
    }
}

fn is_nullish(v: &Bson) -> bool {
    matches!(v, Bson::Null | Bson::Undefined)
}

/// The operands of an operator: an array's elements, or the one argument.
fn operands(arg: &Bson) -> Vec<&Bson> {
    match arg {
        Bson::Array(a) => a.iter().collect(),
        other => vec![other],
    }
}

fn all(doc: &Document, arg: &Bson, ctx: &QueryCtx) -> CmdResult<Vec<Option<Bson>>> {
    operands(arg)
        .into_iter()
        .map(|e| eval(doc, e, ctx))
        .collect()
}

/// Exactly `N` evaluated operands, else mongod's argument-count error (16020).
fn fixed<const N: usize>(
    doc: &Document,
    op: &str,
    arg: &Bson,
    ctx: &QueryCtx,
) -> CmdResult<[Option<Bson>; N]> {
    let values = all(doc, arg, ctx)?;
    let n = values.len();
    values.try_into().map_err(|_| {
        CommandError::new(
            16020,
            "Location16020",
            format!("Expression {op} takes exactly {N} arguments. {n} were passed in."),
        )
    })
}

fn arithmetic(op: &str, a: &Bson, b: &Bson) -> CmdResult<Bson> {
    let type_error = || {
        CommandError::new(
            16554,
            "TypeMismatch",
            format!("{op} only supports numeric types, not {a} and {b}"),
        )
    };
    if let (Some(x), Some(y)) = (as_int(a), as_int(b))
        && op != "$divide"
    {
        let r = match op {
            "$add" => x.checked_add(y),
            "$subtract" => x.checked_sub(y),
            _ => x.checked_mul(y),
        };
        if let Some(r) = r {
            let both_int = matches!((a, b), (Bson::Int32(_), Bson::Int32(_)));
            return Ok(match i32::try_from(r) {
                Ok(small) if both_int => Bson::Int32(small),
                _ => Bson::Int64(r),
            });
        }
    }
    let (x, y) = (
        as_f64(a).ok_or_else(type_error)?,
        as_f64(b).ok_or_else(type_error)?,
    );
    Ok(Bson::Double(match op {
        "$add" => x + y,
        "$subtract" => x - y,
        "$multiply" => x * y,
        _ => {
            if y == 0.0 {
                return Err(CommandError::new(2, "BadValue", "can't $divide by zero"));
            }
            x / y
        }
    }))
}

fn cond(doc: &Document, arg: &Bson, ctx: &QueryCtx) -> CmdResult<Option<Bson>> {
    let count_error = || {
        CommandError::new(
            16020,
            "Location16020",
            "Expression $cond takes exactly 3 arguments.",
        )
    };
    let (i, t, e) = match arg {
        Bson::Array(a) => match a.as_slice() {
            [i, t, e] => (i, t, e),
            _ => return Err(count_error()),
        },
        Bson::Document(d) => match (d.get("if"), d.get("then"), d.get("else")) {
            (Some(i), Some(t), Some(e)) => (i, t, e),
            _ => {
                return Err(CommandError::new(
                    17080,
                    "Location17080",
                    "Missing 'if', 'then' or 'else' parameter to $cond",
                ));
            }
        },
        _ => return Err(count_error()),
    };
    if eval(doc, i, ctx)?.as_ref().is_some_and(truthy) {
        eval(doc, t, ctx)
    } else {
        eval(doc, e, ctx)
    }
}

/// The `field` of `$getField` / `$setField`: a string, possibly given as `{$literal: …}`
/// (mongod wants it constant).
fn field_name(spec: &Document, op: &str) -> CmdResult<String> {
    let raw = spec.get("field").ok_or_else(|| {
        CommandError::new(
            4161102,
            "Location4161102",
            format!("{op} requires 'field' to be specified"),
        )
    })?;
    let value = match raw {
        Bson::Document(d) if d.len() == 1 && d.contains_key("$literal") => d.get("$literal"),
        Bson::String(s) if s.starts_with('$') => None,
        other => Some(other),
    };
    match value {
        Some(Bson::String(s)) => Ok(s.clone()),
        _ => Err(CommandError::new(
            4161106,
            "Location4161106",
            format!("{op} requires 'field' to evaluate to a constant string, but got {raw}"),
        )),
    }
}

/// `$getField: {field, input}` (input defaults to `$$CURRENT`), or `$getField: "name"`.
fn get_field(doc: &Document, arg: &Bson, ctx: &QueryCtx) -> CmdResult<Option<Bson>> {
    let (field, input) = match arg {
        Bson::Document(spec) if !spec.keys().next().is_some_and(|k| k.starts_with('$')) => {
            let field = field_name(spec, "$getField")?;
            let input = match spec.get("input") {
                Some(e) => eval(doc, e, ctx)?,
                None => Some(Bson::Document(doc.clone())),
            };
            (field, input)
        }
        other => {
            let spec = bson::doc! { "field": other.clone() };
            (
                field_name(&spec, "$getField")?,
                Some(Bson::Document(doc.clone())),
            )
        }
    };
    Ok(match input {
        Some(Bson::Document(d)) => d.get(&field).cloned(),
        None | Some(Bson::Null | Bson::Undefined) => Some(Bson::Null),
        Some(_) => {
            return Err(CommandError::new(
                3041705,
                "Location3041705",
                "$getField requires 'input' to evaluate to type Object",
            ));
        }
    })
}

/// `$setField: {field, input, value}` (a missing value, `$$REMOVE`, removes the field) and
/// `$unsetField: {field, input}`. The field name is taken as it is: dots and `$` included.
fn set_field(doc: &Document, op: &str, arg: &Bson, ctx: &QueryCtx) -> CmdResult<Option<Bson>> {
    let Bson::Document(spec) = arg else {
        return Err(CommandError::new(
            4161100,
            "Location4161100",
            format!("{op} only supports an object as its argument"),
        ));
    };
    for k in spec.keys() {
        if !matches!(k.as_str(), "field" | "input" | "value")
            || (op == "$unsetField" && k == "value")
        {
            return Err(CommandError::new(
                4161101,
                "Location4161101",
                format!("{op} found an unknown argument: {k}"),
            ));
        }
    }
    let field = field_name(spec, op)?;
    let input = match spec.get("input") {
        Some(e) => eval(doc, e, ctx)?,
        None => {
            return Err(CommandError::new(
                4161103,
                "Location4161103",
                format!("{op} requires 'input' to be specified"),
            ));
        }
    };
    let value = if op == "$setField" {
        match spec.get("value") {
            Some(e) => eval(doc, e, ctx)?,
            None => {
                return Err(CommandError::new(
                    4161104,
                    "Location4161104",
                    "$setField requires 'value' to be specified",
                ));
            }
        }
    } else {
        None
    };
    let mut out = match input {
        Some(Bson::Document(d)) => d,
        None | Some(Bson::Null | Bson::Undefined) => return Ok(Some(Bson::Null)),
        Some(_) => {
            return Err(CommandError::new(
                4161105,
                "Location4161105",
                format!("{op} requires 'input' to evaluate to type Object"),
            ));
        }
    };
    match value {
        Some(v) => {
            out.insert(field, v);
        }
        None => {
            out.remove(&field);
        }
    }
    Ok(Some(Bson::Document(out)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn ev(doc: &Document, expr: Document) -> CmdResult<Option<Bson>> {
        let ctx = QueryCtx::from_parts(
            Some(&doc! { "locale": "en", "strength": 2 }),
            Some(&doc! { "id": 1 }),
        )?;
        eval(doc, &Bson::Document(expr), &ctx)
    }

    #[test]
    fn comparisons_logic_and_arithmetic() {
        let d = doc! { "_id": 1, "s": "Ping", "n": 4 };
        let t = Some(Bson::Boolean(true));
        assert_eq!(ev(&d, doc! { "$eq": ["$_id", "$$id"] }).unwrap(), t);
        assert_eq!(ev(&d, doc! { "$eq": ["$s", "PING"] }).unwrap(), t);
        assert_eq!(ev(&d, doc! { "$gt": ["$n", 3] }).unwrap(), t);
        assert_eq!(ev(&d, doc! { "$lt": ["$missing", null] }).unwrap(), t);
        assert_eq!(
            ev(
                &d,
                doc! { "$and": [{ "$eq": ["$n", 4] }, { "$not": [false] }] }
            )
            .unwrap(),
            t
        );
        assert_eq!(
            ev(&d, doc! { "$add": ["$n", 1, 0.5] }).unwrap(),
            Some(Bson::Double(5.5))
        );
        assert_eq!(
            ev(&d, doc! { "$cond": [{ "$gt": ["$n", 9] }, "big", "small"] }).unwrap(),
            Some(Bson::String("small".into()))
        );
        assert_eq!(
            ev(&d, doc! { "$ifNull": ["$missing", "dflt"] }).unwrap(),
            Some(Bson::String("dflt".into()))
        );
        assert_eq!(ev(&d, doc! { "$bogus": 1 }).unwrap_err().code, 168);
        for known in OPERATORS {
            let e = ev(&d, doc! { *known: [] }).err();
            assert!(e.is_none_or(|e| e.code != 168), "{known}");
        }
        assert!(
            check_expr(&Bson::Document(
                doc! { "$and": [{ "$eq": [1, { "$literal": { "$x": 1 } }] }] }
            ))
            .is_ok()
        );
        assert_eq!(
            check_expr(&Bson::Document(doc! { "k": [{ "$nope": 1 }] }))
                .unwrap_err()
                .code,
            168
        );
        assert_eq!(ev(&d, doc! { "$eq": [1] }).unwrap_err().code, 16020);
    }

    #[test]
    fn set_and_get_field_take_names_literally() {
        let d = doc! { "_id": 1, "foo": {}, "a.b": 7 };
        let set = ev(
            &d,
            doc! { "$setField": { "field": { "$literal": "$a" }, "value": 1, "input": "$$ROOT" } },
        )
        .unwrap();
        assert_eq!(
            set,
            Some(Bson::Document(
                doc! { "_id": 1, "foo": {}, "a.b": 7, "$a": 1 }
            ))
        );
        let nested = ev(
            &d,
            doc! { "$setField": { "field": "x.y", "value": 2, "input": "$foo" } },
        )
        .unwrap();
        assert_eq!(nested, Some(Bson::Document(doc! { "x.y": 2 })));
        assert_eq!(
            ev(&d, doc! { "$getField": "a.b" }).unwrap(),
            Some(Bson::Int32(7))
        );
        assert_eq!(
            ev(
                &d,
                doc! { "$unsetField": { "field": "a.b", "input": "$$ROOT" } }
            )
            .unwrap(),
            Some(Bson::Document(doc! { "_id": 1, "foo": {} }))
        );
        assert_eq!(
            ev(
                &d,
                doc! { "$setField": { "field": "$x", "value": 1, "input": {} } }
            )
            .unwrap_err()
            .code,
            4161106
        );
    }
}
