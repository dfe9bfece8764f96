//! The `$group` stage: grouping by an `_id` expression and the accumulators (`$sum`, `$avg`,
//! `$min`, `$max`, `$first`, `$last`, `$push`, `$addToSet`).

use std::cmp::Ordering;

use bson::{Bson, Document};

use super::compare::as_f64;
use super::context::QueryCtx;
use super::expr::eval;
use crate::error::{CmdResult, CommandError};

enum Acc {
    Sum {
        int: i64,
        float: f64,
        has_float: bool,
        has_long: bool,
    },
    Avg {
        total: f64,
        n: u32,
    },
    Min(Option<Bson>),
    Max(Option<Bson>),
    First(Option<Bson>),
    Last(Option<Bson>),
    Push(Vec<Bson>),
    AddToSet(Vec<Bson>),
}

impl Acc {
    fn new(op: &str) -> CmdResult<Self> {
        Ok(match op {
            "$sum" => Acc::Sum {
                int: 0,
                float: 0.0,
                has_float: false,
                has_long: false,
            },
            "$avg" => Acc::Avg { total: 0.0, n: 0 },
            "$min" => Acc::Min(None),
            "$max" => Acc::Max(None),
            "$first" => Acc::First(None),
            "$last" => Acc::Last(None),
            "$push" => Acc::Push(Vec::new()),
            "$addToSet" => Acc::AddToSet(Vec::new()),
            other => {
                return Err(CommandError::new(
                    15952,
                    "Location15952",
                    format!("unknown group operator '{other}'"),
                ));
            }
        })
    }

    fn feed(&mut self, v: Option<Bson>, ctx: &QueryCtx) {
        match self {
            Acc::Sum {
                int,
                float,
                has_float,
                has_long,
            } => match v {
                Some(Bson::Int32(x)) => *int = int.saturating_add(i64::from(x)),
                Some(Bson::Int64(x)) => {
                    *has_long = true;
                    *int = int.saturating_add(x);
                }
                Some(ref n @ (Bson::Double(_) | Bson::Decimal128(_))) => {
                    *has_float = true;
                    *float += as_f64(n).unwrap_or(0.0);
                }
                _ => {}
            },
            Acc::Avg { total, n } => {
                if let Some(f) = v.as_ref().and_then(as_f64) {
                    *total += f;
                    *n += 1;
                }
            }
            Acc::Min(_) | Acc::Max(_) => {
                let want_less = matches!(self, Acc::Min(_));
                let (Acc::Min(cur) | Acc::Max(cur)) = self else {
                    return;
                };
                if let Some(v) = v.filter(|v| !matches!(v, Bson::Null)) {
                    let replace = match cur.as_ref() {
                        None => true,
                        Some(c) => {
                            let o = ctx.compare(&v, c);
                            if want_less {
                                o == Ordering::Less
                            } else {
                                o == Ordering::Greater
                            }
                        }
                    };
                    if replace {
                        *cur = Some(v);
                    }
                }
            }
            Acc::First(cur) => {
                if cur.is_none() {
                    *cur = Some(v.unwrap_or(Bson::Null));
                }
            }
            Acc::Last(cur) => *cur = Some(v.unwrap_or(Bson::Null)),
            Acc::Push(list) => {
                if let Some(v) = v {
                    list.push(v);
                }
            }
            Acc::AddToSet(list) => {
                if let Some(v) = v {
                    if !list.iter().any(|e| ctx.equal(e, &v)) {
                        list.push(v);
                    }
                }
            }
        }
    }

    #[allow(clippy::cast_precision_loss)]
    fn finish(self) -> Bson {
        match self {
            Acc::Sum {
                int,
                float,
                has_float,
                has_long,
            } => {
                if has_float {
                    Bson::Double(float + int as f64)
                } else if !has_long {
                    i32::try_from(int).map_or(Bson::Int64(int), Bson::Int32)
                } else {
                    Bson::Int64(int)
                }
            }
            Acc::Avg { total, n } => {
                if n == 0 {
                    Bson::Null
                } else {
                    Bson::Double(total / f64::from(n))
                }
            }
            Acc::Min(v) | Acc::Max(v) | Acc::First(v) | Acc::Last(v) => v.unwrap_or(Bson::Null),
            Acc::Push(l) | Acc::AddToSet(l) => Bson::Array(l),
        }
    }
}

/// Groups `docs` by the `_id` expression (keys equal under the collation share a group).
pub(super) fn group(
    docs: Vec<Document>,
    spec: &Document,
    ctx: &QueryCtx,
) -> CmdResult<Vec<Document>> {
    let id_expr = spec.get("_id").ok_or_else(|| {
        CommandError::new(
            15955,
            "Location15955",
            "a group specification must include an _id",
        )
    })?;
    let mut fields = Vec::new();
    for (k, v) in spec {
        if k == "_id" {
            continue;
        }
        let Bson::Document(acc) = v else {
            return Err(CommandError::new(
                40234,
                "Location40234",
                format!("The field '{k}' must be an accumulator object"),
            ));
        };
        let Some((op, expr)) = acc.iter().next() else {
            return Err(CommandError::bad_value("empty accumulator"));
        };
        Acc::new(op)?;
        fields.push((k.clone(), op.clone(), expr.clone()));
    }
    let mut groups: Vec<(Bson, Vec<Acc>)> = Vec::new();
    for d in &docs {
        let key = eval(d, id_expr, ctx)?.unwrap_or(Bson::Null);
        let pos = match groups.iter().position(|(k, _)| ctx.equal(k, &key)) {
            Some(p) => p,
            None => {
                let accs = fields
                    .iter()
                    .map(|(_, op, _)| Acc::new(op))
                    .collect::<CmdResult<Vec<_>>>()?;
                groups.push((key, accs));
                groups.len() - 1
            }
        };
        if let Some((_, accs)) = groups.get_mut(pos) {
            for ((_, _, expr), acc) in fields.iter().zip(accs.iter_mut()) {
                acc.feed(eval(d, expr, ctx)?, ctx);
            }
        }
    }
    Ok(groups
        .into_iter()
        .map(|(key, accs)| {
            let mut out = bson::doc! { "_id": key };
            for ((name, _, _), acc) in fields.iter().zip(accs) {
                out.insert(name.clone(), acc.finish());
            }
            out
        })
        .collect())
}
