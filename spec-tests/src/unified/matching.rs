//! The unified format's matching rules ("Evaluating Matches"): root-level documents may hold
//! extra keys, nested ones may not, numbers compare by value, and the `$$` special operators.

use bson::{Bson, Document};

/// What the special operators need from the test's entity map.
pub(crate) trait Lookup {
    /// A BSON entity (`$$matchesEntity`).
    fn bson_entity(&self, name: &str) -> Result<Bson, String>;
    /// The logical session id of a session entity (`$$sessionLsid`).
    fn session_lsid(&self, name: &str) -> Result<Document, String>;
}

/// A lookup with no entities (for matches that cannot name one).
pub(crate) struct NoEntities;

impl Lookup for NoEntities {
    fn bson_entity(&self, name: &str) -> Result<Bson, String> {
        Err(format!("no entity `{name}` here"))
    }
    fn session_lsid(&self, name: &str) -> Result<Document, String> {
        Err(format!("no session `{name}` here"))
    }
}

/// Matches `actual` against `expected`; `root` says whether a document may hold extra keys.
/// The error names the path of the first mismatch.
pub(crate) fn matches(
    expected: &Bson,
    actual: Option<&Bson>,
    root: bool,
    lookup: &dyn Lookup,
) -> Result<(), String> {
    matches_at("", expected, actual, root, lookup)
}

/// The single `$$` operator of a document, if it is one.
pub(crate) fn special(d: &Document) -> Option<(&str, &Bson)> {
    if d.len() != 1 {
        return None;
    }
    let (k, v) = d.iter().next()?;
    k.starts_with("$$").then_some((k.as_str(), v))
}

fn show(b: Option<&Bson>) -> String {
    match b {
        None => "(absent)".into(),
        Some(b) => {
            let s = b.to_string();
            if s.len() > 300 {
                format!("{}…", s.chars().take(300).collect::<String>())
            } else {
                s
            }
        }
    }
}

fn matches_at(
    path: &str,
    expected: &Bson,
    actual: Option<&Bson>,
    root: bool,
    lookup: &dyn Lookup,
) -> Result<(), String> {
    let at = if path.is_empty() { "(root)" } else { path };
    match expected {
        Bson::Document(e) => {
            if let Some((op, arg)) = special(e) {
                return operator(path, op, arg, actual, root, lookup);
            }
            let Some(Bson::Document(a)) = actual else {
                return Err(format!("{at}: expected a document, got {}", show(actual)));
            };
            for (k, v) in e {
                let child = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                matches_at(&child, v, a.get(k), false, lookup)?;
            }
            if !root {
                if let Some(extra) = a.keys().find(|k| !e.contains_key(*k)) {
                    return Err(format!(
                        "{at}: unexpected key `{extra}` in {}",
                        show(actual)
                    ));
                }
            }
            Ok(())
        }
        Bson::Array(e) => {
            let Some(Bson::Array(a)) = actual else {
                return Err(format!("{at}: expected an array, got {}", show(actual)));
            };
            if a.len() != e.len() {
                return Err(format!(
                    "{at}: expected {} elements, got {}: {}",
                    e.len(),
                    a.len(),
                    show(actual)
                ));
            }
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                matches_at(&format!("{path}[{i}]"), ev, Some(av), false, lookup)?;
            }
            Ok(())
        }
        _ => match actual {
            Some(a) if scalar_eq(expected, a) => Ok(()),
            _ => Err(format!(
                "{at}: expected {}, got {}",
                show(Some(expected)),
                show(actual)
            )),
        },
    }
}

/// Numbers (not Decimal128) compare by value across int32, int64 and double.
pub(crate) fn as_f64(b: &Bson) -> Option<f64> {
    match b {
        Bson::Int32(i) => Some(f64::from(*i)),
        #[allow(clippy::cast_precision_loss, reason = "test values are small")]
        Bson::Int64(i) => Some(*i as f64),
        Bson::Double(d) => Some(*d),
        _ => None,
    }
}

fn scalar_eq(expected: &Bson, actual: &Bson) -> bool {
    match (as_f64(expected), as_f64(actual)) {
        (Some(e), Some(a)) => e == a,
        _ => expected == actual,
    }
}

/// Whether two values are equal as the `outcome` comparison needs: exact, but numbers by
/// value and document keys in any order.
pub(crate) fn exact_eq(expected: &Bson, actual: &Bson) -> bool {
    match (expected, actual) {
        (Bson::Document(e), Bson::Document(a)) => {
            e.len() == a.len()
                && e.iter()
                    .all(|(k, v)| a.get(k).is_some_and(|av| exact_eq(v, av)))
        }
        (Bson::Array(e), Bson::Array(a)) => {
            e.len() == a.len() && e.iter().zip(a).all(|(x, y)| exact_eq(x, y))
        }
        _ => scalar_eq(expected, actual),
    }
}

/// The `$type` alias of a value.
pub(crate) fn type_name(b: &Bson) -> &'static str {
    match b {
        Bson::Double(_) => "double",
        Bson::String(_) => "string",
        Bson::Document(_) => "object",
        Bson::Array(_) => "array",
        Bson::Binary(_) => "binData",
        Bson::Undefined => "undefined",
        Bson::ObjectId(_) => "objectId",
        Bson::Boolean(_) => "bool",
        Bson::DateTime(_) => "date",
        Bson::Null => "null",
        Bson::RegularExpression(_) => "regex",
        Bson::DbPointer(_) => "dbPointer",
        Bson::JavaScriptCode(_) => "javascript",
        Bson::Symbol(_) => "symbol",
        Bson::JavaScriptCodeWithScope(_) => "javascriptWithScope",
        Bson::Int32(_) => "int",
        Bson::Timestamp(_) => "timestamp",
        Bson::Int64(_) => "long",
        Bson::Decimal128(_) => "decimal",
        Bson::MinKey => "minKey",
        Bson::MaxKey => "maxKey",
    }
}

fn type_matches(name: &str, actual: &Bson) -> bool {
    let have = type_name(actual);
    name == have || (name == "number" && matches!(have, "int" | "long" | "double" | "decimal"))
}

fn operator(
    path: &str,
    op: &str,
    arg: &Bson,
    actual: Option<&Bson>,
    root: bool,
    lookup: &dyn Lookup,
) -> Result<(), String> {
    let at = if path.is_empty() { "(root)" } else { path };
    match op {
        "$$exists" => {
            let want = arg.as_bool().ok_or("$$exists takes a boolean")?;
            if want == actual.is_some() {
                Ok(())
            } else if want {
                Err(format!("{at}: expected to exist"))
            } else {
                Err(format!("{at}: expected to be absent, got {}", show(actual)))
            }
        }
        "$$type" => {
            let Some(a) = actual else {
                return Err(format!(
                    "{at}: expected a value of type {arg}, got (absent)"
                ));
            };
            let ok = match arg {
                Bson::String(s) => type_matches(s, a),
                Bson::Array(names) => names
                    .iter()
                    .any(|n| n.as_str().is_some_and(|n| type_matches(n, a))),
                _ => return Err("$$type takes a string or an array of strings".into()),
            };
            if ok {
                Ok(())
            } else {
                Err(format!(
                    "{at}: expected type {arg}, got {} ({})",
                    type_name(a),
                    show(actual)
                ))
            }
        }
        "$$unsetOrMatches" => match actual {
            None => Ok(()),
            Some(_) => matches_at(path, arg, actual, root, lookup),
        },
        "$$matchesEntity" => {
            let name = arg.as_str().ok_or("$$matchesEntity takes an entity name")?;
            let entity = lookup.bson_entity(name)?;
            matches_at(path, &entity, actual, root, lookup)
        }
        "$$sessionLsid" => {
            let name = arg.as_str().ok_or("$$sessionLsid takes a session name")?;
            let lsid = lookup.session_lsid(name)?;
            match actual {
                Some(Bson::Document(a))
                    if exact_eq(&Bson::Document(lsid.clone()), &Bson::Document(a.clone())) =>
                {
                    Ok(())
                }
                _ => Err(format!(
                    "{at}: expected the lsid of {name} ({lsid}), got {}",
                    show(actual)
                )),
            }
        }
        "$$lte" => {
            let limit = as_f64(arg).ok_or("$$lte takes a number")?;
            match actual.and_then(as_f64) {
                Some(a) if a <= limit => Ok(()),
                _ => Err(format!("{at}: expected <= {arg}, got {}", show(actual))),
            }
        }
        "$$matchesHexBytes" => {
            let hex = arg.as_str().ok_or("$$matchesHexBytes takes a string")?;
            let want = decode_hex(hex).ok_or_else(|| format!("malformed hex bytes {hex:?}"))?;
            let got = match actual {
                Some(Bson::Binary(b)) => Some(b.bytes.clone()),
                Some(Bson::String(s)) => decode_hex(s),
                _ => None,
            };
            if got.as_deref() == Some(want.as_slice()) {
                Ok(())
            } else {
                Err(format!("{at}: expected bytes {hex}, got {}", show(actual)))
            }
        }
        "$$matchAsDocument" | "$$matchAsRoot" => {
            let as_root = op == "$$matchAsRoot";
            let actual_doc = match actual {
                Some(Bson::String(s)) if !as_root => {
                    let json: serde_json::Value = serde_json::from_str(s)
                        .map_err(|e| format!("{at}: not a JSON document: {e}"))?;
                    Some(
                        Bson::try_from(json)
                            .map_err(|e| format!("{at}: not extended JSON: {e}"))?,
                    )
                }
                Some(Bson::Document(d)) if as_root => Some(Bson::Document(d.clone())),
                other => {
                    return Err(format!(
                        "{at}: {op} expects a {}, got {}",
                        if as_root { "document" } else { "JSON string" },
                        show(other)
                    ));
                }
            };
            matches_at(path, arg, actual_doc.as_ref(), as_root, lookup)
        }
        other => Err(format!("{at}: unknown special operator {other}")),
    }
}

/// Decodes an even-length hexadecimal string.
pub(crate) fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{bson, doc};

    fn m(expected: Bson, actual: Bson, root: bool) -> Result<(), String> {
        matches(&expected, Some(&actual), root, &NoEntities)
    }

    #[test]
    fn root_documents_allow_extra_keys_nested_ones_do_not() {
        assert!(m(bson!({"x": 1}), bson!({"x": 1, "y": 2}), true).is_ok());
        assert!(m(bson!({"x": {"y": 1}}), bson!({"x": {"y": 1, "z": 1}}), true).is_err());
        assert!(m(bson!({"x": 1, "y": 1}), bson!({"x": 1}), true).is_err());
        assert!(m(bson!([{"x": 1}]), bson!([{"x": 1, "y": 1}]), false).is_err());
    }

    #[test]
    fn numbers_compare_by_value() {
        assert!(m(bson!(1), bson!(1.0), false).is_ok());
        assert!(m(bson!(1), Bson::Int64(1), false).is_ok());
        assert!(m(bson!(1), bson!(1.5), false).is_err());
        assert!(m(bson!("1"), bson!(1), false).is_err());
    }

    #[test]
    fn arrays_need_the_same_length() {
        assert!(m(bson!([1, 2, 3]), bson!([1, 2, 3, 4]), false).is_err());
        assert!(m(bson!([1, 2]), bson!([1, 2]), false).is_ok());
    }

    #[test]
    fn special_operators() {
        let e = bson!({"a": {"$$exists": true}, "b": {"$$exists": false}});
        assert!(m(e.clone(), bson!({"a": null}), true).is_ok());
        assert!(m(e.clone(), bson!({"a": 1, "b": 1}), true).is_err());
        assert!(m(e, bson!({}), true).is_err());
        assert!(m(bson!({"$$type": ["int", "long"]}), Bson::Int64(3), false).is_ok());
        assert!(m(bson!({"$$type": "string"}), bson!(3), false).is_err());
        assert!(m(bson!({"$$type": "number"}), bson!(3.5), false).is_ok());
        let u = bson!({"x": {"$$unsetOrMatches": 2}});
        assert!(m(u.clone(), bson!({}), true).is_ok());
        assert!(m(u.clone(), bson!({"x": 2}), true).is_ok());
        assert!(m(u, bson!({"x": 3}), true).is_err());
        assert!(m(bson!({"$$lte": 5}), bson!(5.0), false).is_ok());
        assert!(m(bson!({"$$lte": 5}), bson!(6), false).is_err());
        let j = bson!({"$$matchAsDocument": {"a": 1}});
        assert!(m(j.clone(), bson!("{\"a\": 1}"), false).is_ok());
        assert!(m(j, bson!("{\"a\": 1, \"b\": 2}"), false).is_err());
        let r = bson!({"$$matchAsRoot": {"a": 1}});
        assert!(m(r, bson!({"a": 1, "b": 2}), false).is_ok());
        assert!(m(bson!({"$$matchesHexBytes": "12ab"}), bson!("12AB"), false).is_ok());
        assert!(m(bson!({"$$bogus": 1}), bson!(1), false).is_err());
    }

    #[test]
    fn outcome_comparison_is_exact_up_to_key_order() {
        assert!(exact_eq(&bson!({"a": 1, "b": 2}), &bson!({"b": 2, "a": 1})));
        assert!(!exact_eq(&bson!({"a": 1}), &bson!({"a": 1, "b": 2})));
        let _ = doc! {};
    }
}
