//! Aggregation expressions, as far as the testkit evaluates them: field paths, `$literal`,
//! and documents and arrays of expressions.

use bson::{Bson, Document};

use super::path::lookup;

/// Evaluates an aggregation expression: `"$path"` references, `{$literal: v}`, nested
/// documents and arrays; anything else is a literal. `None` means "missing".
pub(crate) fn eval_expr(doc: &Document, expr: &Bson) -> Option<Bson> {
    match expr {
        Bson::String(s) if s.starts_with('$') => {
            let path = s.get(1..).unwrap_or_default();
            let vals = lookup(doc, path);
            if path.contains('.') && vals.len() > 1 {
                Some(Bson::Array(vals.into_iter().cloned().collect()))
            } else {
                vals.first().map(|v| (*v).clone())
            }
        }
        Bson::Document(d) if d.len() == 1 && d.contains_key("$literal") => {
            d.get("$literal").cloned()
        }
        Bson::Document(d) => {
            let mut out = Document::new();
            for (k, v) in d {
                if let Some(r) = eval_expr(doc, v) {
                    out.insert(k.clone(), r);
                }
            }
            Some(Bson::Document(out))
        }
        Bson::Array(a) => Some(Bson::Array(
            a.iter()
                .map(|e| eval_expr(doc, e).unwrap_or(Bson::Null))
                .collect(),
        )),
        other => Some(other.clone()),
    }
}
