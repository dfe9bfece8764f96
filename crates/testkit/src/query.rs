//! The query engine: BSON ordering, filters, sort, projection, update operators and a small
//! aggregation pipeline, all on `bson::Document`.

use std::cmp::Ordering;

use bson::{Bson, Document};

use crate::error::{CmdResult, CommandError, codes};

/// The canonical BSON type order used by comparisons and sorts.
fn type_rank(b: &Bson) -> u8 {
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
fn as_int(b: &Bson) -> Option<i64> {
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
    let (ra, rb) = (type_rank(a), type_rank(b));
    if ra != rb {
        return ra.cmp(&rb);
    }
    match (a, b) {
        _ if ra == 2 => match (as_int(a), as_int(b)) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => cmp_f64(as_f64(a).unwrap_or(f64::NAN), as_f64(b).unwrap_or(f64::NAN)),
        },
        (Bson::String(x) | Bson::Symbol(x), Bson::String(y) | Bson::Symbol(y)) => {
            x.as_bytes().cmp(y.as_bytes())
        }
        (Bson::Document(x), Bson::Document(y)) => compare_docs(x, y),
        (Bson::Array(x), Bson::Array(y)) => {
            for (p, q) in x.iter().zip(y.iter()) {
                let o = compare(p, q);
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

fn compare_docs(x: &Document, y: &Document) -> Ordering {
    for ((ka, va), (kb, vb)) in x.iter().zip(y.iter()) {
        let o = type_rank(va)
            .cmp(&type_rank(vb))
            .then_with(|| ka.cmp(kb))
            .then_with(|| compare(va, vb));
        if o != Ordering::Equal {
            return o;
        }
    }
    x.len().cmp(&y.len())
}

/// Equality in the query sense: numbers compare by value across types.
pub(crate) fn values_equal(a: &Bson, b: &Bson) -> bool {
    type_rank(a) == type_rank(b) && compare(a, b) == Ordering::Equal && same_null(a, b)
}

fn same_null(a: &Bson, b: &Bson) -> bool {
    // null and undefined share a rank but equality on null only matches null/missing.
    !matches!(
        (a, b),
        (Bson::Undefined, Bson::Null) | (Bson::Null, Bson::Undefined)
    )
}

/// The values stored at a dotted path; arrays met on the way are traversed element-wise.
pub(crate) fn lookup<'a>(doc: &'a Document, path: &str) -> Vec<&'a Bson> {
    let mut out = Vec::new();
    let parts: Vec<&str> = path.split('.').collect();
    lookup_in_doc(doc, &parts, &mut out);
    out
}

fn lookup_in_doc<'a>(doc: &'a Document, parts: &[&str], out: &mut Vec<&'a Bson>) {
    let Some((first, rest)) = parts.split_first() else {
        return;
    };
    if let Some(v) = doc.get(first) {
        lookup_in_value(v, rest, out);
    }
}

fn lookup_in_value<'a>(v: &'a Bson, rest: &[&str], out: &mut Vec<&'a Bson>) {
    let Some((next, after)) = rest.split_first() else {
        out.push(v);
        return;
    };
    match v {
        Bson::Document(d) => lookup_in_doc(d, rest, out),
        Bson::Array(arr) => {
            if let Ok(i) = next.parse::<usize>() {
                if let Some(e) = arr.get(i) {
                    lookup_in_value(e, after, out);
                }
            } else {
                for e in arr {
                    if let Bson::Document(d) = e {
                        lookup_in_doc(d, rest, out);
                    }
                }
            }
        }
        _ => {}
    }
}

/// The first value at a path (no array traversal beyond what `lookup` does).
pub(crate) fn get_path<'a>(doc: &'a Document, path: &str) -> Option<&'a Bson> {
    lookup(doc, path).into_iter().next()
}

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

/// Whether `doc` matches the query `filter`.
pub(crate) fn matches(doc: &Document, filter: &Document) -> CmdResult<bool> {
    for (key, cond) in filter {
        let ok = match key.as_str() {
            "$and" => {
                let mut all = true;
                for f in filter_list(cond, "$and")? {
                    if !matches(doc, f)? {
                        all = false;
                        break;
                    }
                }
                all
            }
            "$or" => {
                let mut any = false;
                for f in filter_list(cond, "$or")? {
                    if matches(doc, f)? {
                        any = true;
                        break;
                    }
                }
                any
            }
            "$nor" => {
                let mut any = false;
                for f in filter_list(cond, "$nor")? {
                    if matches(doc, f)? {
                        any = true;
                        break;
                    }
                }
                !any
            }
            "$comment" => true,
            k if k.starts_with('$') => {
                return Err(CommandError::bad_value(format!(
                    "unknown top level operator: {k}"
                )));
            }
            path => field_matches(doc, path, cond)?,
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

fn filter_list<'a>(v: &'a Bson, op: &str) -> CmdResult<Vec<&'a Document>> {
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

fn is_operator_doc(cond: &Bson) -> Option<&Document> {
    match cond {
        Bson::Document(d) if d.keys().next().is_some_and(|k| k.starts_with('$')) => Some(d),
        _ => None,
    }
}

fn field_matches(doc: &Document, path: &str, cond: &Bson) -> CmdResult<bool> {
    let values = lookup(doc, path);
    match is_operator_doc(cond) {
        Some(ops) => {
            for (op, arg) in ops {
                if !operator_matches(&values, op, arg)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        None => Ok(eq_matches(&values, cond)),
    }
}

fn eq_matches(values: &[&Bson], target: &Bson) -> bool {
    if matches!(target, Bson::Null) && values.is_empty() {
        return true;
    }
    candidates(values).iter().any(|c| values_equal(c, target))
}

fn operator_matches(values: &[&Bson], op: &str, arg: &Bson) -> CmdResult<bool> {
    let cmp_any = |pred: fn(Ordering) -> bool| {
        candidates(values)
            .iter()
            .any(|c| type_rank(c) == type_rank(arg) && pred(compare(c, arg)))
    };
    Ok(match op {
        "$eq" => eq_matches(values, arg),
        "$ne" => !eq_matches(values, arg),
        "$gt" => cmp_any(|o| o == Ordering::Greater),
        "$gte" => cmp_any(|o| o != Ordering::Less),
        "$lt" => cmp_any(|o| o == Ordering::Less),
        "$lte" => cmp_any(|o| o != Ordering::Greater),
        "$in" | "$nin" => {
            let Bson::Array(list) = arg else {
                return Err(CommandError::bad_value(format!("{op} needs an array")));
            };
            let found = list.iter().any(|t| eq_matches(values, t));
            if op == "$in" { found } else { !found }
        }
        "$exists" => truthy(arg) != values.is_empty(),
        "$not" => {
            let Bson::Document(inner) = arg else {
                return Err(CommandError::bad_value("$not needs a regex or a document"));
            };
            let mut all = true;
            for (iop, iarg) in inner {
                if !operator_matches(values, iop, iarg)? {
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
            !list.is_empty() && list.iter().all(|t| eq_matches(values, t))
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
                            if !operator_matches(&[e], iop, iarg)? {
                                all = false;
                                break;
                            }
                        }
                        all
                    } else if let Bson::Document(ed) = e {
                        matches(ed, inner)?
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
pub(crate) fn sort_docs(docs: &mut [Document], spec: &Document) -> CmdResult<()> {
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
            let o = compare(&sort_key(a, k, *dir), &sort_key(b, k, *dir));
            let o = if *dir < 0 { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
    Ok(())
}

fn sort_key(doc: &Document, path: &str, dir: i32) -> Bson {
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
                    let o = compare(e, cur);
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

/// Applies a find-style projection.
pub(crate) fn project(doc: &Document, spec: &Document) -> CmdResult<Document> {
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
        let val = eval_expr(doc, &expr);
        if let Some(val) = val {
            set_path(&mut out, &k, val)?;
        }
    }
    Ok(out)
}

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

/// Sets a value at a dotted path, creating intermediate documents.
pub(crate) fn set_path(doc: &mut Document, path: &str, value: Bson) -> CmdResult<()> {
    match path.split_once('.') {
        None => {
            doc.insert(path, value);
            Ok(())
        }
        Some((head, rest)) => {
            let entry = doc
                .entry(head)
                .or_insert_with(|| Bson::Document(Document::new()));
            set_in_value(entry, rest, value, path)
        }
    }
}

fn set_in_value(target: &mut Bson, rest: &str, value: Bson, full: &str) -> CmdResult<()> {
    match target {
        Bson::Document(d) => set_path(d, rest, value),
        Bson::Array(arr) => {
            let (head, tail) = match rest.split_once('.') {
                Some((h, t)) => (h, Some(t)),
                None => (rest, None),
            };
            let idx: usize = head.parse().map_err(|_| {
                CommandError::new(
                    28,
                    "PathNotViable",
                    format!("Cannot create field '{head}' in element of array at {full}"),
                )
            })?;
            if idx > 1_000_000 {
                return Err(CommandError::bad_value("array index too large"));
            }
            while arr.len() <= idx {
                arr.push(Bson::Null);
            }
            let slot = arr
                .get_mut(idx)
                .ok_or_else(|| CommandError::bad_value("bad array index"))?;
            match tail {
                None => {
                    *slot = value;
                    Ok(())
                }
                Some(t) => {
                    if matches!(slot, Bson::Null) {
                        *slot = Bson::Document(Document::new());
                    }
                    set_in_value(slot, t, value, full)
                }
            }
        }
        _ => Err(CommandError::new(
            28,
            "PathNotViable",
            format!("Cannot create field in non-object at path {full}"),
        )),
    }
}

/// Removes the value at a dotted path, if present.
pub(crate) fn remove_path(doc: &mut Document, path: &str) -> Option<Bson> {
    match path.split_once('.') {
        None => doc.remove(path),
        Some((head, rest)) => match doc.get_mut(head)? {
            Bson::Document(d) => remove_path(d, rest),
            _ => None,
        },
    }
}

fn get_path_mut<'a>(doc: &'a mut Document, path: &str) -> Option<&'a mut Bson> {
    match path.split_once('.') {
        None => doc.get_mut(path),
        Some((head, rest)) => match doc.get_mut(head)? {
            Bson::Document(d) => get_path_mut(d, rest),
            _ => None,
        },
    }
}

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
        if let Some(id) = id {
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

/// Runs an aggregation pipeline over `docs`.
pub(crate) fn run_pipeline(mut docs: Vec<Document>, pipeline: &[Bson]) -> CmdResult<Vec<Document>> {
    for stage in pipeline {
        let Bson::Document(stage) = stage else {
            return Err(CommandError::type_mismatch(
                "Each element of the 'pipeline' array must be an object",
            ));
        };
        let Some((name, arg)) = stage.iter().next() else {
            return Err(CommandError::bad_value(
                "A pipeline stage specification object must contain exactly one field.",
            ));
        };
        docs = match name.as_str() {
            "$match" => {
                let f = stage_doc(arg, name)?;
                let mut out = Vec::new();
                for d in docs {
                    if matches(&d, f)? {
                        out.push(d);
                    }
                }
                out
            }
            "$sort" => {
                sort_docs(&mut docs, stage_doc(arg, name)?)?;
                docs
            }
            "$limit" => {
                let n = stage_count(arg, name)?;
                docs.truncate(n);
                docs
            }
            "$skip" => {
                let n = stage_count(arg, name)?;
                docs.into_iter().skip(n).collect()
            }
            "$project" => {
                let spec = stage_doc(arg, name)?;
                docs.iter()
                    .map(|d| project(d, spec))
                    .collect::<CmdResult<_>>()?
            }
            "$unset" => {
                let fields: Vec<String> = match arg {
                    Bson::String(s) => vec![s.clone()],
                    Bson::Array(a) => a
                        .iter()
                        .filter_map(|e| e.as_str().map(String::from))
                        .collect(),
                    _ => return Err(CommandError::bad_value("$unset needs a string or an array")),
                };
                for d in &mut docs {
                    for f in &fields {
                        remove_path(d, f);
                    }
                }
                docs
            }
            "$addFields" | "$set" => {
                let spec = stage_doc(arg, name)?;
                let mut out = Vec::with_capacity(docs.len());
                for mut d in docs {
                    for (k, e) in spec {
                        if let Some(v) = eval_expr(&d, e) {
                            set_path(&mut d, k, v)?;
                        }
                    }
                    out.push(d);
                }
                out
            }
            "$count" => {
                let Bson::String(field) = arg else {
                    return Err(CommandError::bad_value(
                        "the count field must be a non-empty string",
                    ));
                };
                if docs.is_empty() {
                    Vec::new()
                } else {
                    let n = i32::try_from(docs.len()).unwrap_or(i32::MAX);
                    vec![bson::doc! { field.clone(): n }]
                }
            }
            "$unwind" => {
                let (path, keep_empty) = match arg {
                    Bson::String(s) => (s.clone(), false),
                    Bson::Document(d) => (
                        d.get_str("path")
                            .map_err(|_| CommandError::bad_value("$unwind needs a path"))?
                            .to_string(),
                        d.get("preserveNullAndEmptyArrays").is_some_and(truthy),
                    ),
                    _ => return Err(CommandError::bad_value("$unwind needs a path")),
                };
                let path = path.strip_prefix('$').unwrap_or(&path).to_string();
                let mut out = Vec::new();
                for d in docs {
                    match get_path(&d, &path).cloned() {
                        Some(Bson::Array(a)) if !a.is_empty() => {
                            for e in a {
                                let mut c = d.clone();
                                set_path(&mut c, &path, e)?;
                                out.push(c);
                            }
                        }
                        Some(Bson::Array(_)) | None | Some(Bson::Null) => {
                            if keep_empty {
                                out.push(d);
                            }
                        }
                        Some(_) => out.push(d),
                    }
                }
                out
            }
            "$group" => group(docs, stage_doc(arg, name)?)?,
            other => {
                return Err(CommandError::new(
                    codes::UNRECOGNIZED_STAGE,
                    "Location40324",
                    format!("Unrecognized pipeline stage name: '{other}'"),
                ));
            }
        };
    }
    Ok(docs)
}

fn stage_doc<'a>(arg: &'a Bson, name: &str) -> CmdResult<&'a Document> {
    arg.as_document().ok_or_else(|| {
        CommandError::bad_value(format!("the {name} stage specification must be an object"))
    })
}

fn stage_count(arg: &Bson, name: &str) -> CmdResult<usize> {
    as_int(arg)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| CommandError::bad_value(format!("invalid argument to {name} stage")))
}

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

    fn feed(&mut self, v: Option<Bson>) {
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
                            let o = compare(&v, c);
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
                    if !list.iter().any(|e| values_equal(e, &v)) {
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

fn group(docs: Vec<Document>, spec: &Document) -> CmdResult<Vec<Document>> {
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
        let key = eval_expr(d, id_expr).unwrap_or(Bson::Null);
        let pos = match groups.iter().position(|(k, _)| values_equal(k, &key)) {
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
                acc.feed(eval_expr(d, expr));
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

#[cfg(test)]
mod tests {
    use super::*;
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
            matches(&d, &doc! { "$where": "1" }).unwrap_err().code,
            codes::BAD_VALUE
        );
    }

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

    #[test]
    fn pipeline_stages() {
        let docs = vec![
            doc! { "g": "a", "v": 1 },
            doc! { "g": "b", "v": 2 },
            doc! { "g": "a", "v": 3 },
        ];
        let out = run_pipeline(
            docs.clone(),
            &[
                Bson::Document(doc! { "$match": { "v": { "$gte": 1 } } }),
                Bson::Document(
                    doc! { "$group": { "_id": "$g", "n": { "$sum": 1 }, "t": { "$sum": "$v" } } },
                ),
                Bson::Document(doc! { "$sort": { "_id": -1 } }),
            ],
        )
        .unwrap();
        assert_eq!(
            out,
            vec![
                doc! { "_id": "b", "n": 1, "t": 2 },
                doc! { "_id": "a", "n": 2, "t": 4 }
            ]
        );
        let out = run_pipeline(
            docs,
            &[
                Bson::Document(doc! { "$skip": 1 }),
                Bson::Document(doc! { "$limit": 1 }),
                Bson::Document(doc! { "$project": { "_id": 0, "v": 1 } }),
            ],
        )
        .unwrap();
        assert_eq!(out, vec![doc! { "v": 2 }]);
        assert_eq!(
            run_pipeline(vec![], &[Bson::Document(doc! { "$bogus": 1 })])
                .unwrap_err()
                .code,
            codes::UNRECOGNIZED_STAGE
        );
    }
}
