//! Updates: the update operators (`$set`, `$inc`, `$push`, `$pull`, …), replacement
//! documents (the `_id` stays), and the document an upsert starts from.

use std::cmp::Ordering;

use bson::{Bson, Document};

use super::compare::{as_f64, as_int, compare, type_rank, values_equal};
use super::filter::{is_operator_doc, matches, operator_matches};
use super::path::{get_path, get_path_mut, remove_path, set_path};
use crate::error::{CmdResult, CommandError, codes};

/// Whether an update document uses operators (`$set`, …) rather than being a replacement.
pub(crate) fn is_operator_update(update: &Document) -> bool {
    update.keys().next().is_some_and(|k| k.starts_with('$'))
}

fn add_numbers(a: &Bson, b: &Bson, mul: bool) -> Option<Bson> {
    match (a, b) {
        (Bson::Int32(x), Bson::Int32(y)) => {
            let r = if mul {
                x.checked_mul(*y)
            } else {
                x.checked_add(*y)
            };
            match r {
                Some(v) => Some(Bson::Int32(v)),
                None => add_numbers(&Bson::Int64(i64::from(*x)), b, mul),
            }
        }
        _ if as_int(a).is_some() && as_int(b).is_some() => {
            let (x, y) = (as_int(a)?, as_int(b)?);
            let r = if mul {
                x.checked_mul(y)
            } else {
                x.checked_add(y)
            };
            r.map(Bson::Int64)
        }
        _ => {
            let (x, y) = (as_f64(a)?, as_f64(b)?);
            Some(Bson::Double(if mul { x * y } else { x + y }))
        }
    }
}

/// Applies an operator update (or a replacement) to `doc`. Returns whether it changed.
pub(crate) fn apply_update(
    doc: &mut Document,
    update: &Document,
    is_insert: bool,
) -> CmdResult<bool> {
    let before = doc.clone();
    if !is_operator_update(update) {
        if update.keys().any(|k| k.starts_with('$')) {
            return Err(CommandError::failed_to_parse(
                "replacement document must not contain update operators",
            ));
        }
        let id = doc.get("_id").cloned();
        if let (Some(old), Some(new)) = (&id, update.get("_id")) {
            if !values_equal(old, new) {
                return Err(immutable_id());
            }
        }
        let mut new_doc = Document::new();
        // The stored `_id` stays first; an upsert's replacement brings its own (null too).
        if let Some(id) = id.or_else(|| update.get("_id").cloned()) {
            new_doc.insert("_id", id);
        }
        for (k, v) in update {
            if k != "_id" {
                new_doc.insert(k.clone(), v.clone());
            }
        }
        *doc = new_doc;
        return Ok(*doc != before);
    }
    for (op, fields) in update {
        let Bson::Document(fields) = fields else {
            return Err(CommandError::failed_to_parse(format!(
                "Modifiers operate on fields but we found type {:?} instead",
                fields.element_type()
            )));
        };
        for (path, arg) in fields {
            if (path == "_id" || path.starts_with("_id."))
                && op != "$setOnInsert"
                && (op != "$set" || doc.get("_id").is_some_and(|old| !values_equal(old, arg)))
            {
                return Err(immutable_id());
            }
            match op.as_str() {
                "$set" => set_path(doc, path, arg.clone())?,
                "$setOnInsert" => {
                    if is_insert {
                        set_path(doc, path, arg.clone())?;
                    }
                }
                "$unset" => {
                    remove_path(doc, path);
                }
                "$inc" | "$mul" => {
                    if type_rank(arg) != 2 {
                        return Err(CommandError::type_mismatch(format!(
                            "Cannot {} with non-numeric argument",
                            if op == "$inc" {
                                "increment"
                            } else {
                                "multiply"
                            }
                        )));
                    }
                    let cur = get_path(doc, path).cloned();
                    let new = match cur {
                        None => {
                            if op == "$inc" {
                                arg.clone()
                            } else {
                                add_numbers(arg, &Bson::Int32(0), true).unwrap_or(Bson::Int32(0))
                            }
                        }
                        Some(c) if type_rank(&c) == 2 => add_numbers(&c, arg, op == "$mul")
                            .ok_or_else(|| CommandError::bad_value("numeric overflow"))?,
                        Some(_) => {
                            return Err(CommandError::type_mismatch(format!(
                                "Cannot apply {op} to a value of non-numeric type at {path}"
                            )));
                        }
                    };
                    set_path(doc, path, new)?;
                }
                "$min" | "$max" => {
                    let replace = match get_path(doc, path) {
                        None => true,
                        Some(c) => {
                            let o = compare(arg, c);
                            (op == "$min" && o == Ordering::Less)
                                || (op == "$max" && o == Ordering::Greater)
                        }
                    };
                    if replace {
                        set_path(doc, path, arg.clone())?;
                    }
                }
                "$currentDate" => set_path(doc, path, Bson::DateTime(bson::DateTime::now()))?,
                "$rename" => {
                    let Bson::String(to) = arg else {
                        return Err(CommandError::bad_value("$rename target must be a string"));
                    };
                    if let Some(v) = remove_path(doc, path) {
                        set_path(doc, to, v)?;
                    }
                }
                "$push" | "$addToSet" => {
                    let items: Vec<Bson> = match arg {
                        Bson::Document(d) if d.contains_key("$each") => match d.get("$each") {
                            Some(Bson::Array(a)) => a.clone(),
                            _ => return Err(CommandError::bad_value("$each must be an array")),
                        },
                        other => vec![other.clone()],
                    };
                    if get_path(doc, path).is_none() {
                        set_path(doc, path, Bson::Array(Vec::new()))?;
                    }
                    match get_path_mut(doc, path) {
                        Some(Bson::Array(arr)) => {
                            for it in items {
                                if op == "$push" || !arr.iter().any(|e| values_equal(e, &it)) {
                                    arr.push(it);
                                }
                            }
                        }
                        _ => {
                            return Err(CommandError::type_mismatch(format!(
                                "The field '{path}' must be an array"
                            )));
                        }
                    }
                }
                "$pull" => {
                    if let Some(Bson::Array(arr)) = get_path_mut(doc, path) {
                        let mut kept = Vec::new();
                        for e in arr.drain(..) {
                            let remove = match arg {
                                Bson::Document(cond) => match &e {
                                    Bson::Document(ed) if is_operator_doc(arg).is_none() => {
                                        matches(ed, cond)?
                                    }
                                    _ => field_cond_on_value(&e, cond)?,
                                },
                                v => values_equal(&e, v),
                            };
                            if !remove {
                                kept.push(e);
                            }
                        }
                        *arr = kept;
                    }
                }
                other => {
                    return Err(CommandError::failed_to_parse(format!(
                        "Unknown modifier: {other}. Expected a valid update modifier or pipeline-style update specified as an array"
                    )));
                }
            }
        }
    }
    Ok(*doc != before)
}

fn field_cond_on_value(v: &Bson, cond: &Document) -> CmdResult<bool> {
    for (op, arg) in cond {
        if !operator_matches(&[v], op, arg)? {
            return Ok(false);
        }
    }
    Ok(true)
}

fn immutable_id() -> CommandError {
    CommandError::new(
        codes::IMMUTABLE_FIELD,
        "ImmutableField",
        "Performing an update on the path '_id' would modify the immutable field '_id'",
    )
}

/// The document an upsert starts from: the equality parts of the filter.
pub(crate) fn upsert_seed(filter: &Document) -> CmdResult<Document> {
    let mut out = Document::new();
    seed_into(&mut out, filter)?;
    Ok(out)
}

fn seed_into(out: &mut Document, filter: &Document) -> CmdResult<()> {
    for (k, v) in filter {
        if k == "$and" {
            if let Bson::Array(a) = v {
                for f in a {
                    if let Bson::Document(f) = f {
                        seed_into(out, f)?;
                    }
                }
            }
            continue;
        }
        if k.starts_with('$') {
            continue;
        }
        match is_operator_doc(v) {
            Some(ops) => {
                if let Some(eq) = ops.get("$eq") {
                    set_path(out, k, eq.clone())?;
                }
            }
            None => set_path(out, k, v.clone())?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;
    #[test]
    fn update_operators() {
        let mut d = doc! { "_id": 1, "n": 1, "gone": true };
        let changed = apply_update(
            &mut d,
            &doc! { "$set": { "x.y": "z" }, "$inc": { "n": 2, "m": 1 }, "$unset": { "gone": "" } },
            false,
        )
        .unwrap();
        assert!(changed);
        assert_eq!(d, doc! { "_id": 1, "n": 3, "x": { "y": "z" }, "m": 1 });
        assert!(!apply_update(&mut d, &doc! { "$set": { "n": 3 } }, false).unwrap());
        assert_eq!(
            apply_update(&mut d, &doc! { "$set": { "_id": 2 } }, false)
                .unwrap_err()
                .code,
            codes::IMMUTABLE_FIELD
        );
        assert_eq!(
            apply_update(&mut d, &doc! { "$inc": { "x": 1 } }, false)
                .unwrap_err()
                .code,
            codes::TYPE_MISMATCH
        );
        apply_update(
            &mut d,
            &doc! { "$push": { "l": { "$each": [1, 2] } } },
            false,
        )
        .unwrap();
        assert_eq!(d.get_array("l").unwrap().len(), 2);
        apply_update(&mut d, &doc! { "k": 1 }, false).unwrap();
        assert_eq!(d, doc! { "_id": 1, "k": 1 });
        assert_eq!(
            upsert_seed(&doc! { "a": 1, "b": { "$gt": 1 }, "c": { "$eq": 2 } }).unwrap(),
            doc! { "a": 1, "c": 2 }
        );
    }
}
