//! What a command gives every filter, sort and expression it evaluates: its `collation`
//! (string comparison) and its `let` variables (`$$name` in `$expr` and pipelines).

use std::cmp::Ordering;

use bson::{Bson, Document};

use super::collation::Collation;
use super::compare::{compare_in, values_equal_in};
use super::expr::{eval, is_user_var_name};
use crate::error::{CmdResult, CommandError};

/// A command's evaluation context; the default is the simple collation and no variables.
#[derive(Debug, Clone, Default)]
pub(crate) struct QueryCtx {
    /// `None`: the simple (binary) collation.
    pub(crate) collation: Option<Collation>,
    /// The `let` variables, already evaluated.
    pub(crate) vars: Document,
}

impl QueryCtx {
    /// The context of a command (or a write statement): its `collation` and `let` documents,
    /// either absent. Each `let` value is an expression evaluated once, without a document
    /// (`{$literal: …}`, `$rand`, `$$NOW`); names must be valid user variable names.
    pub(crate) fn from_parts(
        collation: Option<&Document>,
        let_vars: Option<&Document>,
    ) -> CmdResult<QueryCtx> {
        let mut ctx = QueryCtx {
            collation: match collation {
                Some(c) => Collation::parse(c)?,
                None => None,
            },
            vars: Document::new(),
        };
        if let Some(vars) = let_vars {
            let empty = Document::new();
            let mut evaluated = Document::new();
            for (name, expr) in vars {
                if !is_user_var_name(name) {
                    return Err(CommandError::new(
                        16867,
                        "Location16867",
                        format!(
                            "'{name}' starts with an invalid character for a user variable name"
                        ),
                    ));
                }
                let value = eval(&empty, expr, &ctx)?.unwrap_or(Bson::Undefined);
                evaluated.insert(name.clone(), value);
            }
            ctx.vars = evaluated;
        }
        Ok(ctx)
    }

    /// The context of a command document: its top-level `collation` and `let`.
    pub(crate) fn of_command(cmd: &Document) -> CmdResult<QueryCtx> {
        QueryCtx::from_parts(opt_doc(cmd, "collation")?, opt_doc(cmd, "let")?)
    }

    /// This context with another collation (a write statement's own).
    pub(crate) fn with_collation(&self, collation: Option<&Document>) -> CmdResult<QueryCtx> {
        let mut ctx = self.clone();
        if let Some(c) = collation {
            ctx.collation = Collation::parse(c)?;
        }
        Ok(ctx)
    }

    /// Compares two values under the collation.
    pub(crate) fn compare(&self, a: &Bson, b: &Bson) -> Ordering {
        compare_in(a, b, self.collation.as_ref())
    }

    /// Query equality under the collation.
    pub(crate) fn equal(&self, a: &Bson, b: &Bson) -> bool {
        values_equal_in(a, b, self.collation.as_ref())
    }
}

/// An optional document field (absent or null: `None`).
fn opt_doc<'a>(cmd: &'a Document, key: &str) -> CmdResult<Option<&'a Document>> {
    match cmd.get(key) {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::Document(d)) => Ok(Some(d)),
        Some(_) => Err(CommandError::type_mismatch(format!(
            "BSON field '{key}' is the wrong type, expected type 'object'"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn let_variables_are_evaluated_once() {
        let ctx = QueryCtx::of_command(&doc! {
            "find": "c",
            "let": { "id": 1, "y": { "$literal": "$bar" }, "r": { "$rand": {} } },
            "collation": { "locale": "en", "strength": 2 },
        })
        .unwrap();
        assert_eq!(ctx.vars.get("id"), Some(&Bson::Int32(1)));
        assert_eq!(ctx.vars.get("y"), Some(&Bson::String("$bar".into())));
        assert!(matches!(ctx.vars.get("r"), Some(Bson::Double(f)) if (0.0..1.0).contains(f)));
        assert!(ctx.equal(&Bson::String("a".into()), &Bson::String("A".into())));
        assert!(QueryCtx::of_command(&doc! { "let": { "Bad": 1 } }).is_err());
        assert!(QueryCtx::of_command(&doc! { "let": 1 }).is_err());
    }
}
