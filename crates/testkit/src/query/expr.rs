//! Aggregation expressions: field paths (`"$a.b"`), variables (`$$ROOT`, `$$CURRENT`,
//! `$$NOW`, `$$REMOVE` and a command's `let` variables), object and array literals, and the
//! operators in `expr_ops.rs`. `None` is "missing" (a field that is not there, `$$REMOVE`).

use bson::{Bson, Document};

use super::context::QueryCtx;
use super::expr_ops::eval_operator;
use crate::error::{CmdResult, CommandError};

/// Evaluates `expr` against `doc` (`$$ROOT` and `$$CURRENT`).
pub(crate) fn eval(doc: &Document, expr: &Bson, ctx: &QueryCtx) -> CmdResult<Option<Bson>> {
    match expr {
        Bson::String(s) if s.starts_with("$$") => {
            variable(doc, s.get(2..).unwrap_or_default(), ctx)
        }
        Bson::String(s) if s.starts_with('$') => {
            let path = s.get(1..).unwrap_or_default();
            if path.is_empty() {
                return Err(CommandError::new(
                    16872,
                    "Location16872",
                    "'$' by itself is not a valid FieldPath",
                ));
            }
            Ok(field_path(doc, path))
        }
        Bson::Document(d) => match d.keys().next() {
            Some(op) if op.starts_with('$') => {
                if d.len() != 1 {
                    return Err(CommandError::new(
                        15983,
                        "Location15983",
                        format!(
                            "an expression specification must contain exactly one field, the \
                             name of the expression. Found {} fields in {d}",
                            d.len()
                        ),
                    ));
                }
                let arg = d.get(op).unwrap_or(&Bson::Null);
                eval_operator(doc, op, arg, ctx)
            }
            _ => {
                let mut out = Document::new();
                for (k, v) in d {
                    if let Some(r) = eval(doc, v, ctx)? {
                        out.insert(k.clone(), r);
                    }
                }
                Ok(Some(Bson::Document(out)))
            }
        },
        Bson::Array(a) => {
            let mut out = Vec::with_capacity(a.len());
            for e in a {
                out.push(eval(doc, e, ctx)?.unwrap_or(Bson::Null));
            }
            Ok(Some(Bson::Array(out)))
        }
        other => Ok(Some(other.clone())),
    }
}

/// `$$name` or `$$name.path`.
fn variable(doc: &Document, spec: &str, ctx: &QueryCtx) -> CmdResult<Option<Bson>> {
    let (name, path) = match spec.split_once('.') {
        Some((n, p)) => (n, Some(p)),
        None => (spec, None),
    };
    let value = match name {
        "ROOT" | "CURRENT" => Bson::Document(doc.clone()),
        "REMOVE" => return Ok(None),
        "NOW" => Bson::DateTime(bson::DateTime::now()),
        other => match ctx.vars.get(other) {
            Some(v) => v.clone(),
            None => {
                return Err(CommandError::new(
                    17276,
                    "Location17276",
                    format!("Use of undefined variable: {other}"),
                ));
            }
        },
    };
    Ok(match path {
        None => Some(value),
        Some(p) => value_path(&value, &p.split('.').collect::<Vec<_>>()),
    })
}

/// The value of a field path in a document, as aggregation reads it: through an array, the
/// values found in its documents, as an array.
pub(crate) fn field_path(doc: &Document, path: &str) -> Option<Bson> {
    let parts: Vec<&str> = path.split('.').collect();
    let (first, rest) = parts.split_first()?;
    value_path(doc.get(*first)?, rest)
}

fn value_path(v: &Bson, parts: &[&str]) -> Option<Bson> {
    let Some((first, rest)) = parts.split_first() else {
        return Some(v.clone());
    };
    match v {
        Bson::Document(d) => value_path(d.get(*first)?, rest),
        Bson::Array(items) => Some(Bson::Array(
            items
                .iter()
                .filter(|e| matches!(e, Bson::Document(_) | Bson::Array(_)))
                .filter_map(|e| value_path(e, parts))
                .collect(),
        )),
        _ => None,
    }
}

/// Whether `name` may name a user variable (`let`): a lower-case ASCII letter or a
/// non-ASCII character first, then letters, digits and `_`.
pub(crate) fn is_user_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || !c.is_ascii())
        && chars.all(|c| c.is_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn ev(doc: &Document, expr: Bson) -> Option<Bson> {
        let ctx = QueryCtx::from_parts(None, Some(&doc! { "x": 5, "o": { "p": 1 } })).unwrap();
        eval(doc, &expr, &ctx).unwrap()
    }

    #[test]
    fn paths_and_variables() {
        let d = doc! { "_id": 1, "a": { "b": 2 }, "arr": [{ "k": 1 }, { "k": 2 }, 3] };
        assert_eq!(ev(&d, Bson::String("$a.b".into())), Some(Bson::Int32(2)));
        assert_eq!(ev(&d, Bson::String("$nope".into())), None);
        assert_eq!(
            ev(&d, Bson::String("$arr.k".into())),
            Some(Bson::Array(vec![Bson::Int32(1), Bson::Int32(2)]))
        );
        assert_eq!(ev(&d, Bson::String("$$x".into())), Some(Bson::Int32(5)));
        assert_eq!(ev(&d, Bson::String("$$o.p".into())), Some(Bson::Int32(1)));
        assert_eq!(ev(&d, Bson::String("$$REMOVE".into())), None);
        assert_eq!(
            ev(&d, Bson::String("$$ROOT".into())),
            Some(Bson::Document(d.clone()))
        );
        assert_eq!(
            ev(&d, Bson::Document(doc! { "k": "$_id", "gone": "$$REMOVE" })),
            Some(Bson::Document(doc! { "k": 1 }))
        );
        let ctx = QueryCtx::default();
        assert_eq!(
            eval(&d, &Bson::String("$$undefinedVar".into()), &ctx)
                .unwrap_err()
                .code,
            17276
        );
        assert!(is_user_var_name("id") && is_user_var_name("a_1") && !is_user_var_name("Id"));
    }
}
