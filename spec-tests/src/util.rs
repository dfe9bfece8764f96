//! Helpers shared by the runners: finding and loading JSON test files, and the MATCH rule
//! that the spec test formats use to compare expected and actual values.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::{Context, Outcome, Suite};

/// Every `.json` file under `dir` (recursively), sorted, that passes the `SPEC_FILE` filter.
/// A missing folder yields no files.
pub fn json_files(ctx: &Context, dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    collect(dir, &mut files);
    files.retain(|p| ctx.wants_file(p));
    files.sort();
    files
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, files);
        } else if path.extension().is_some_and(|e| e == "json") {
            files.push(path);
        }
    }
}

/// A suite's files: the official ones under `official_rel` (relative to `source/`, when the
/// official tests were given), then the project's own.
pub fn suite_files(ctx: &Context, official_rel: &str, suite: Suite) -> Vec<PathBuf> {
    let mut files = ctx
        .official_dir(official_rel)
        .map(|dir| json_files(ctx, &dir))
        .unwrap_or_default();
    files.extend(json_files(ctx, &ctx.own_dir(suite)));
    files
}

/// Calls `run_case(out, description, case)` for every case of a file in the
/// `{"tests": [{"description": ..}, ..]}` format whose description passes the test filter.
/// A file that cannot be loaded or has no `tests` array is recorded as one failure.
pub fn for_each_case(
    ctx: &Context,
    out: &mut Outcome,
    file: &Path,
    mut run_case: impl FnMut(&mut Outcome, &str, &Value),
) {
    let json = match load_json(file) {
        Ok(j) => j,
        Err(e) => {
            out.fail(file, "(file)", e);
            return;
        }
    };
    let Some(tests) = json.get("tests").and_then(Value::as_array) else {
        out.fail(file, "(file)", "no `tests` array");
        return;
    };
    for case in tests {
        let description = case
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("(no description)");
        if ctx.wants_test(description) {
            run_case(out, description, case);
        }
    }
}

/// Reads and parses a JSON file, with the file named in the error.
pub fn load_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("cannot parse {}: {e}", path.display()))
}

/// The spec tests' MATCH rule: `expected` is a subset of `actual`. Objects match when every
/// expected key matches (extra actual keys are allowed), arrays element-wise with equal
/// lengths, numbers by value whatever their representation, and the placeholder `42` / `"42"`
/// matches any non-null value. Returns the path of the first mismatch.
pub fn matches(expected: &Value, actual: &Value) -> Result<(), String> {
    matches_at(expected, actual, "")
}

fn matches_at(expected: &Value, actual: &Value, path: &str) -> Result<(), String> {
    let is_placeholder = match expected {
        Value::Number(n) => n.as_f64() == Some(42.0),
        Value::String(s) => s == "42",
        _ => false,
    };
    if is_placeholder {
        return if actual.is_null() {
            Err(format!("{}: expected any value, got null", show(path)))
        } else {
            Ok(())
        };
    }
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                let sub = format!("{path}.{k}");
                match a.get(k) {
                    Some(av) => matches_at(ev, av, &sub)?,
                    None if ev.is_null() => {}
                    None => return Err(format!("{}: missing, expected {ev}", show(&sub))),
                }
            }
            Ok(())
        }
        (Value::Array(e), Value::Array(a)) => {
            if e.len() != a.len() {
                return Err(format!(
                    "{}: expected {} elements, got {}",
                    show(path),
                    e.len(),
                    a.len()
                ));
            }
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                matches_at(ev, av, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        (Value::Number(e), Value::Number(a)) if e.as_f64() == a.as_f64() => Ok(()),
        (e, a) if e == a => Ok(()),
        (e, a) => Err(format!("{}: expected {e}, got {a}", show(path))),
    }
}

fn show(path: &str) -> &str {
    if path.is_empty() { "(root)" } else { path }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subset_objects_match() {
        assert!(matches(&json!({"a": 1}), &json!({"a": 1.0, "b": 2})).is_ok());
    }

    #[test]
    fn placeholder_matches_any_non_null() {
        assert!(matches(&json!({"id": 42}), &json!({"id": 7})).is_ok());
        assert!(matches(&json!({"id": "42"}), &json!({"id": "x"})).is_ok());
        let err = matches(&json!({"id": 42}), &json!({"id": null})).unwrap_err();
        assert!(err.contains(".id"), "{err}");
    }

    #[test]
    fn mismatch_names_the_field() {
        let err = matches(&json!({"a": {"b": [1, 2]}}), &json!({"a": {"b": [1, 3]}})).unwrap_err();
        assert_eq!(err, ".a.b[1]: expected 2, got 3");
    }

    #[test]
    fn array_lengths_must_agree() {
        assert!(matches(&json!([1]), &json!([1, 2])).is_err());
    }

    #[test]
    fn missing_key_is_reported() {
        let err = matches(&json!({"reason": "idle"}), &json!({})).unwrap_err();
        assert!(err.starts_with(".reason: missing"), "{err}");
    }
}
