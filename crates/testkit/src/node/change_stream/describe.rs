//! An update event's `updateDescription`, computed from the document before and after.

use bson::{Bson, Document, doc};

/// One component of a changed field's path.
#[derive(Debug, Clone, PartialEq)]
enum Part {
    Field(String),
    Index(usize),
}

/// An update's `updateDescription`: the fields set (dotted paths, into sub-documents and
/// array elements, but not below a path in `whole`, which an operator set whole), the fields
/// removed, the arrays truncated, and with showExpandedEvents the `disambiguatedPaths` of
/// paths whose dotted form is ambiguous (a numeric field name, or a field name with a dot).
pub(super) fn describe_update(
    before: &Document,
    after: &Document,
    whole: &[String],
    expanded: bool,
) -> Document {
    let mut diff = Diff {
        whole,
        ..Diff::default()
    };
    diff.documents(&mut Vec::new(), before, after);
    let mut out = doc! {
        "updatedFields": diff.updated.iter().map(|(p, v)| (dotted(p), v.clone())).collect::<Document>(),
        "removedFields": diff.removed.iter().map(|p| Bson::String(dotted(p))).collect::<Vec<_>>(),
        "truncatedArrays": diff.truncated.iter().map(|(p, n)| {
            Bson::Document(doc! { "field": dotted(p), "newSize": i32::try_from(*n).unwrap_or(i32::MAX) })
        }).collect::<Vec<_>>(),
    };
    if expanded {
        let mut paths = Document::new();
        let all = diff
            .updated
            .iter()
            .map(|(p, _)| p)
            .chain(&diff.removed)
            .chain(diff.truncated.iter().map(|(p, _)| p));
        for p in all {
            let ambiguous = p.iter().any(|part| match part {
                Part::Field(f) => f.contains('.') || f.parse::<u64>().is_ok(),
                Part::Index(_) => false,
            });
            if ambiguous {
                let parts: Vec<Bson> = p
                    .iter()
                    .map(|part| match part {
                        Part::Field(f) => Bson::String(f.clone()),
                        Part::Index(i) => Bson::Int32(i32::try_from(*i).unwrap_or(i32::MAX)),
                    })
                    .collect();
                paths.insert(dotted(p), parts);
            }
        }
        out.insert("disambiguatedPaths", paths);
    }
    out
}

fn dotted(p: &[Part]) -> String {
    p.iter()
        .map(|part| match part {
            Part::Field(f) => f.clone(),
            Part::Index(i) => i.to_string(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

#[derive(Default)]
struct Diff<'a> {
    whole: &'a [String],
    updated: Vec<(Vec<Part>, Bson)>,
    removed: Vec<Vec<Part>>,
    truncated: Vec<(Vec<Part>, usize)>,
}

impl Diff<'_> {
    fn documents(&mut self, path: &mut Vec<Part>, before: &Document, after: &Document) {
        for (k, new) in after {
            path.push(Part::Field(k.clone()));
            match before.get(k) {
                Some(old) => self.values(path, old, new),
                None => self.updated.push((path.clone(), new.clone())),
            }
            path.pop();
        }
        for k in before.keys() {
            if !after.contains_key(k) {
                let mut p = path.clone();
                p.push(Part::Field(k.clone()));
                self.removed.push(p);
            }
        }
    }

    fn values(&mut self, path: &mut Vec<Part>, old: &Bson, new: &Bson) {
        if old == new {
            return;
        }
        if !self.whole.is_empty() && self.whole.contains(&dotted(path)) {
            self.updated.push((path.clone(), new.clone()));
            return;
        }
        match (old, new) {
            (Bson::Document(o), Bson::Document(n)) => self.documents(path, o, n),
            (Bson::Array(o), Bson::Array(n)) => {
                if n.len() < o.len() {
                    self.truncated.push((path.clone(), n.len()));
                }
                for (i, item) in n.iter().enumerate() {
                    path.push(Part::Index(i));
                    match o.get(i) {
                        Some(prev) => self.values(path, prev, item),
                        None => self.updated.push((path.clone(), item.clone())),
                    }
                    path.pop();
                }
            }
            _ => self.updated.push((path.clone(), new.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_descriptions_follow_mongod() {
        let before = doc! { "_id": 1, "a": { "1": 1 }, "array": ["foo", { "a": "bar" }, 1, 2, 3], "gone": 1 };
        let after =
            doc! { "_id": 1, "a": { "1": 2 }, "array": ["foo", { "a": "baz" }], "new": true };
        let d = describe_update(&before, &after, &[], true);
        assert_eq!(
            d.get_document("updatedFields").unwrap(),
            &doc! { "a.1": 2, "array.1.a": "baz", "new": true }
        );
        assert_eq!(
            d.get_array("removedFields").unwrap(),
            &vec![Bson::from("gone")]
        );
        assert_eq!(
            d.get_array("truncatedArrays").unwrap(),
            &vec![Bson::Document(doc! { "field": "array", "newSize": 2 })]
        );
        assert_eq!(
            d.get_document("disambiguatedPaths").unwrap(),
            &doc! { "a.1": ["a", "1"] }
        );
        let nested = describe_update(
            &doc! { "a": [{ "1": 1 }] },
            &doc! { "a": [{ "1": 2 }] },
            &[],
            true,
        );
        assert_eq!(
            nested.get_document("disambiguatedPaths").unwrap(),
            &doc! { "a.0.1": ["a", 0, "1"] }
        );
        assert!(
            !describe_update(&before, &after, &[], false).contains_key("disambiguatedPaths"),
            "only with showExpandedEvents"
        );
        // `$set: {a: {...}}` names `a` whole; `$set: {"a.b": 1}` names `a.b`.
        let before = doc! { "a": { "b": 1, "c": 1 }, "arr": [1, 2, 3] };
        let after = doc! { "a": { "b": 2 }, "arr": [1, 2] };
        let d = describe_update(&before, &after, &["a".to_owned(), "arr".to_owned()], false);
        assert_eq!(
            d.get_document("updatedFields").unwrap(),
            &doc! { "a": { "b": 2 }, "arr": [1, 2] }
        );
        assert!(d.get_array("removedFields").unwrap().is_empty());
        assert!(d.get_array("truncatedArrays").unwrap().is_empty());
    }
}
