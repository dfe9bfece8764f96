//! Dotted paths (`a.b.0.c`): reading every value at a path (through arrays), and setting or
//! removing one value, creating intermediate documents on the way.

use bson::{Bson, Document};

use crate::error::{CmdResult, CommandError};

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

pub(super) fn get_path_mut<'a>(doc: &'a mut Document, path: &str) -> Option<&'a mut Bson> {
    match path.split_once('.') {
        None => doc.get_mut(path),
        Some((head, rest)) => match doc.get_mut(head)? {
            Bson::Document(d) => get_path_mut(d, rest),
            _ => None,
        },
    }
}
