//! Find-style projections: inclusion, exclusion, `_id` handling and computed fields.

use bson::{Bson, Document};

use super::compare::truthy;
use super::context::QueryCtx;
use super::expr::eval;
use super::path::{get_path, remove_path, set_path};
use crate::error::{CmdResult, CommandError};

/// Applies a find-style projection.
#[cfg(test)]
pub(crate) fn project(doc: &Document, spec: &Document) -> CmdResult<Document> {
    project_in(doc, spec, &QueryCtx::default())
}

/// Applies a projection whose computed fields see the command's variables.
pub(crate) fn project_in(doc: &Document, spec: &Document, ctx: &QueryCtx) -> CmdResult<Document> {
    if spec.is_empty() {
        return Ok(doc.clone());
    }
    let mut include_id = true;
    let mut inclusion: Option<bool> = None;
    let mut computed = Vec::new();
    for (k, v) in spec {
        let flag = match v {
            Bson::Boolean(_) | Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) => truthy(v),
            other => {
                computed.push((k.clone(), other.clone()));
                continue;
            }
        };
        if k == "_id" {
            include_id = flag;
            continue;
        }
        match inclusion {
            None => inclusion = Some(flag),
            Some(prev) if prev != flag => {
                return Err(CommandError::new(
                    31254,
                    "Location31254",
                    format!("Cannot do exclusion on field {k} in inclusion projection"),
                ));
            }
            _ => {}
        }
    }
    // Only `_id` given: `{_id: 1}` keeps just `_id`, `{_id: 0}` removes it.
    let inclusion = inclusion.unwrap_or(!computed.is_empty() || include_id);
    let mut out = Document::new();
    if inclusion {
        if include_id {
            if let Some(id) = doc.get("_id") {
                out.insert("_id", id.clone());
            }
        }
        for (k, v) in spec {
            if k == "_id"
                || !matches!(
                    v,
                    Bson::Boolean(_) | Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_)
                )
            {
                continue;
            }
            if let Some(val) = get_path(doc, k) {
                if !k.contains('.') || !matches!(val, Bson::Array(_)) {
                    set_path(&mut out, k, val.clone())?;
                }
            }
        }
    } else {
        out = doc.clone();
        if !include_id {
            out.remove("_id");
        }
        for (k, v) in spec {
            if k != "_id" && !truthy(v) {
                remove_path(&mut out, k);
            }
        }
    }
    for (k, expr) in computed {
        let val = eval(doc, &expr, ctx)?;
        if let Some(val) = val {
            set_path(&mut out, &k, val)?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;
    #[test]
    fn projection_inclusion_and_exclusion() {
        let d = doc! { "_id": 1, "a": 1, "b": 2, "c": { "d": 3, "e": 4 } };
        assert_eq!(
            project(&d, &doc! { "a": 1 }).unwrap(),
            doc! { "_id": 1, "a": 1 }
        );
        assert_eq!(
            project(&d, &doc! { "a": 1, "_id": 0 }).unwrap(),
            doc! { "a": 1 }
        );
        assert_eq!(
            project(&d, &doc! { "c.d": 1 }).unwrap(),
            doc! { "_id": 1, "c": { "d": 3 } }
        );
        assert_eq!(
            project(&d, &doc! { "b": 0, "c": 0 }).unwrap(),
            doc! { "_id": 1, "a": 1 }
        );
        assert!(project(&d, &doc! { "a": 1, "b": 0 }).is_err());
        assert_eq!(project(&d, &doc! { "_id": 1 }).unwrap(), doc! { "_id": 1 });
        assert_eq!(project(&d, &doc! { "_id": 0 }).unwrap().len(), 3);
    }
}
