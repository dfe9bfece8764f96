//! Comparing BSON values as the server does: the canonical type order, numeric views across
//! int / long / double / decimal, query equality, truthiness of flags, and sorting documents
//! by a sort specification.

use std::cmp::Ordering;

use bson::{Bson, Document};

use super::collation::Collation;
use super::path::lookup;
use crate::error::{CmdResult, CommandError};

/// The canonical BSON type order used by comparisons and sorts.
pub(super) fn type_rank(b: &Bson) -> u8 {
    match b {
        Bson::MinKey => 0,
        Bson::Null | Bson::Undefined => 1,
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => 2,
        Bson::Symbol(_) | Bson::String(_) => 3,
        Bson::Document(_) => 4,
        Bson::Array(_) => 5,
        Bson::Binary(_) => 6,
        Bson::ObjectId(_) => 7,
        Bson::Boolean(_) => 8,
        Bson::DateTime(_) => 9,
        Bson::Timestamp(_) => 10,
        Bson::RegularExpression(_) => 11,
        Bson::DbPointer(_) => 12,
        Bson::JavaScriptCode(_) => 13,
        Bson::JavaScriptCodeWithScope(_) => 14,
        Bson::MaxKey => 16,
    }
}

/// An integer view of a number when it is integral.
pub(super) fn as_int(b: &Bson) -> Option<i64> {
    match b {
        Bson::Int32(v) => Some(i64::from(*v)),
        Bson::Int64(v) => Some(*v),
        _ => None,
    }
}

/// A float view of any number.
#[allow(clippy::cast_precision_loss)]
pub(crate) fn as_f64(b: &Bson) -> Option<f64> {
    match b {
        Bson::Int32(v) => Some(f64::from(*v)),
        Bson::Int64(v) => Some(*v as f64),
        Bson::Double(v) => Some(*v),
        Bson::Decimal128(d) => d.to_string().parse().ok(),
        _ => None,
    }
}

fn cmp_f64(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

/// Total order over BSON values, following the server's comparison rules.
pub(crate) fn compare(a: &Bson, b: &Bson) -> Ordering {
    compare_in(a, b, None)
}

/// [`compare`] with strings (also inside documents and arrays) compared under `collation`.
pub(crate) fn compare_in(a: &Bson, b: &Bson, collation: Option<&Collation>) -> Ordering {
    let (ra, rb) = (type_rank(a), type_rank(b));
    if ra != rb {
        return ra.cmp(&rb);
    }
    match (a, b) {
        _ if ra == 2 => match (as_int(a), as_int(b)) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => cmp_f64(as_f64(a).unwrap_or(f64::NAN), as_f64(b).unwrap_or(f64::NAN)),
        },
        (Bson::String(x) | Bson::Symbol(x), Bson::String(y) | Bson::Symbol(y)) => match collation {
            Some(c) => c.compare(x, y),
            None => x.as_bytes().cmp(y.as_bytes()),
        },
        (Bson::Document(x), Bson::Document(y)) => compare_docs(x, y, collation),
        (Bson::Array(x), Bson::Array(y)) => {
            for (p, q) in x.iter().zip(y.iter()) {
                let o = compare_in(p, q, collation);
                if o != Ordering::Equal {
                    return o;
                }
            }
            x.len().cmp(&y.len())
        }
        (Bson::Binary(x), Bson::Binary(y)) => x
            .bytes
            .len()
            .cmp(&y.bytes.len())
            .then(u8::from(x.subtype).cmp(&u8::from(y.subtype)))
            .then(x.bytes.cmp(&y.bytes)),
        (Bson::ObjectId(x), Bson::ObjectId(y)) => x.bytes().cmp(&y.bytes()),
        (Bson::Boolean(x), Bson::Boolean(y)) => x.cmp(y),
        (Bson::DateTime(x), Bson::DateTime(y)) => x.cmp(y),
        (Bson::Timestamp(x), Bson::Timestamp(y)) => {
            (x.time, x.increment).cmp(&(y.time, y.increment))
        }
        (Bson::RegularExpression(x), Bson::RegularExpression(y)) => x
            .pattern
            .as_str()
            .cmp(y.pattern.as_str())
            .then(x.options.as_str().cmp(y.options.as_str())),
        (Bson::JavaScriptCode(x), Bson::JavaScriptCode(y)) => x.cmp(y),
        _ => Ordering::Equal,
    }
}

fn compare_docs(x: &Document, y: &Document, collation: Option<&Collation>) -> Ordering {
    for ((ka, va), (kb, vb)) in x.iter().zip(y.iter()) {
        let o = type_rank(va)
            .cmp(&type_rank(vb))
            .then_with(|| ka.cmp(kb))
            .then_with(|| compare_in(va, vb, collation));
        if o != Ordering::Equal {
            return o;
        }
    }
    x.len().cmp(&y.len())
}

/// Equality in the query sense: numbers compare by value across types.
pub(crate) fn values_equal(a: &Bson, b: &Bson) -> bool {
    values_equal_in(a, b, None)
}

/// [`values_equal`] with strings compared under `collation`.
pub(crate) fn values_equal_in(a: &Bson, b: &Bson, collation: Option<&Collation>) -> bool {
    type_rank(a) == type_rank(b)
        && compare_in(a, b, collation) == Ordering::Equal
        && same_null(a, b)
}

fn same_null(a: &Bson, b: &Bson) -> bool {
    // null and undefined share a rank but equality on null only matches null/missing.
    !matches!(
        (a, b),
        (Bson::Undefined, Bson::Null) | (Bson::Null, Bson::Undefined)
    )
}

/// Truthiness as the server reads flags (`true`, non-zero numbers).
pub(crate) fn truthy(b: &Bson) -> bool {
    match b {
        Bson::Boolean(v) => *v,
        Bson::Null | Bson::Undefined => false,
        n if type_rank(n) == 2 => as_f64(n).is_some_and(|f| f != 0.0),
        _ => true,
    }
}

/// Sorts documents in place by a sort specification `{field: 1 | -1, ...}`.
#[cfg(test)]
pub(crate) fn sort_docs(docs: &mut [Document], spec: &Document) -> CmdResult<()> {
    sort_docs_in(docs, spec, None)
}

/// [`sort_docs`] with strings compared under `collation`.
pub(crate) fn sort_docs_in(
    docs: &mut [Document],
    spec: &Document,
    collation: Option<&Collation>,
) -> CmdResult<()> {
    let mut keys = Vec::new();
    for (k, v) in spec {
        let dir = match as_f64(v) {
            Some(f) if f > 0.0 => 1,
            Some(f) if f < 0.0 => -1,
            _ => {
                return Err(CommandError::bad_value(format!(
                    "bad sort specification for {k}"
                )));
            }
        };
        keys.push((k.clone(), dir));
    }
    docs.sort_by(|a, b| {
        for (k, dir) in &keys {
            let o = compare_in(
                &sort_key(a, k, *dir, collation),
                &sort_key(b, k, *dir, collation),
                collation,
            );
            let o = if *dir < 0 { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
    Ok(())
}

fn sort_key(doc: &Document, path: &str, dir: i32, collation: Option<&Collation>) -> Bson {
    let values = lookup(doc, path);
    let mut best: Option<&Bson> = None;
    for v in &values {
        let elems: Vec<&Bson> = match v {
            Bson::Array(a) if !a.is_empty() => a.iter().collect(),
            other => vec![*other],
        };
        for e in elems {
            best = match best {
                None => Some(e),
                Some(cur) => {
                    let o = compare_in(e, cur, collation);
                    if (dir > 0 && o == Ordering::Less) || (dir < 0 && o == Ordering::Greater) {
                        Some(e)
                    } else {
                        Some(cur)
                    }
                }
            };
        }
    }
    best.cloned().unwrap_or(Bson::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;
    #[test]
    fn sort_orders_mixed_numbers_and_types() {
        let mut docs = vec![
            doc! { "v": 2.5 },
            doc! { "v": "s" },
            doc! { "v": 1 },
            doc! {},
            doc! { "v": 10_i64 },
        ];
        sort_docs(&mut docs, &doc! { "v": 1 }).unwrap();
        let got: Vec<Option<&Bson>> = docs.iter().map(|d| d.get("v")).collect();
        assert_eq!(
            got,
            vec![
                None,
                Some(&Bson::Int32(1)),
                Some(&Bson::Double(2.5)),
                Some(&Bson::Int64(10)),
                Some(&Bson::String("s".into()))
            ]
        );
    }
}
