//! The crate-graph check of `cargo xtask tidy`: the workspace's own dependency graph, as
//! `cargo metadata` reports it, must match the block that ARCHITECTURE.md documents.
//!
//! An edge is a normal or build dependency of a workspace member on another workspace member;
//! dev-dependencies are not edges (tests may use anything). The block lists one line per
//! package, `name: dep, dep` with the dependencies sorted, or `name: (none)`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// The line that opens the block in ARCHITECTURE.md (matched exactly, surrounding spaces aside).
pub(crate) const BEGIN: &str =
    "<!-- crate-graph:begin (checked by `cargo xtask tidy`; normal dependencies only) -->";
/// The line that closes the block.
pub(crate) const END: &str = "<!-- crate-graph:end -->";

/// Package name to the names of the workspace packages it depends on.
pub(crate) type Graph = BTreeMap<String, BTreeSet<String>>;

/// The graph from the output of `cargo metadata --format-version 1 --no-deps`, keeping
/// the packages in the order of `workspace_members`.
pub(crate) fn from_metadata(json: &str) -> Result<(Graph, Vec<String>), String> {
    let meta: Value =
        serde_json::from_str(json).map_err(|e| format!("cannot parse cargo metadata: {e}"))?;
    let members: Vec<&str> = meta
        .get("workspace_members")
        .and_then(Value::as_array)
        .ok_or("cargo metadata has no `workspace_members`")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let packages = meta
        .get("packages")
        .and_then(Value::as_array)
        .ok_or("cargo metadata has no `packages`")?;
    let mut names = Vec::new();
    let mut deps_of = Vec::new();
    for id in &members {
        let package = packages
            .iter()
            .find(|p| p.get("id").and_then(Value::as_str) == Some(id))
            .ok_or_else(|| format!("workspace member {id} is not among the packages"))?;
        let name = package
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("package {id} has no name"))?;
        let deps: Vec<&str> = package
            .get("dependencies")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|d| match d.get("kind") {
                None | Some(Value::Null) => true,
                Some(kind) => kind.as_str() == Some("build"),
            })
            .filter_map(|d| d.get("name").and_then(Value::as_str))
            .collect();
        names.push(name.to_string());
        deps_of.push(deps);
    }
    let member_names: BTreeSet<&str> = names.iter().map(String::as_str).collect();
    let graph = names
        .iter()
        .zip(deps_of)
        .map(|(name, deps)| {
            let edges = deps
                .into_iter()
                .filter(|d| member_names.contains(d))
                .map(str::to_string)
                .collect();
            (name.clone(), edges)
        })
        .collect();
    Ok((graph, names))
}

/// The graph written between the markers of `text` (ARCHITECTURE.md). Lines of a fenced
/// code block (```) inside the markers are skipped. Errors name what is malformed.
pub(crate) fn from_architecture(text: &str) -> Result<Graph, Vec<String>> {
    let marker = |l: &str, m: &str| l.trim() == m;
    let lines: Vec<&str> = text.lines().collect();
    let begin = lines.iter().position(|l| marker(l, BEGIN));
    let end = lines.iter().position(|l| marker(l, END));
    let (begin, end) = match (begin, end) {
        (Some(b), Some(e)) if b < e => (b, e),
        (None, _) => {
            return Err(vec![format!(
                "no crate-graph block: the line `{BEGIN}` is missing"
            )]);
        }
        (_, None) => return Err(vec![format!("the crate-graph block has no `{END}` line")]),
        _ => {
            return Err(vec![format!(
                "`{END}` comes before the block's begin marker"
            )]);
        }
    };
    let mut graph = Graph::new();
    let mut errors = Vec::new();
    for (i, line) in lines.iter().enumerate().take(end).skip(begin + 1) {
        let line = line.trim();
        if line.is_empty() || line.starts_with("```") {
            continue;
        }
        let n = i + 1;
        let Some((name, deps)) = line.split_once(':') else {
            errors.push(format!(
                "crate-graph line {n} is not `package: deps`: `{line}`"
            ));
            continue;
        };
        let name = name.trim();
        let deps = deps.trim();
        let list: Vec<&str> = if deps == "(none)" {
            Vec::new()
        } else {
            deps.split(',').map(str::trim).collect()
        };
        if list.iter().any(|d| d.is_empty()) {
            errors.push(format!(
                "crate-graph line {n} has an empty dependency (write `(none)` for a leaf)"
            ));
            continue;
        }
        if list.windows(2).any(|w| w[0] >= w[1]) {
            errors.push(format!(
                "crate-graph line {n}: the dependencies of `{name}` are not sorted (or repeat)"
            ));
        }
        if graph
            .insert(
                name.to_string(),
                list.iter().map(|d| d.to_string()).collect(),
            )
            .is_some()
        {
            errors.push(format!("crate-graph line {n}: `{name}` is listed twice"));
        }
    }
    if errors.is_empty() {
        Ok(graph)
    } else {
        Err(errors)
    }
}

/// One block line for `name`, as ARCHITECTURE.md should have it.
pub(crate) fn line(name: &str, deps: &BTreeSet<String>) -> String {
    if deps.is_empty() {
        format!("{name}: (none)")
    } else {
        let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
        format!("{name}: {}", deps.join(", "))
    }
}

/// The differences between the documented graph and the actual one: missing packages, extra
/// packages and differing edges, in the order of `order` (then any other documented package).
pub(crate) fn compare(documented: &Graph, actual: &Graph, order: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    for name in order {
        let Some(deps) = actual.get(name) else {
            continue;
        };
        match documented.get(name) {
            None => problems.push(format!(
                "crate graph: package `{name}` is missing; add `{}`",
                line(name, deps)
            )),
            Some(doc) if doc != deps => {
                let missing: Vec<&str> = deps.difference(doc).map(String::as_str).collect();
                let extra: Vec<&str> = doc.difference(deps).map(String::as_str).collect();
                let mut what = Vec::new();
                if !missing.is_empty() {
                    what.push(format!("not documented: {}", missing.join(", ")));
                }
                if !extra.is_empty() {
                    what.push(format!("documented but absent: {}", extra.join(", ")));
                }
                problems.push(format!(
                    "crate graph: the edges of `{name}` differ ({}); the line should be `{}`",
                    what.join("; "),
                    line(name, deps)
                ));
            }
            Some(_) => {}
        }
    }
    for name in documented.keys() {
        if !actual.contains_key(name) {
            problems.push(format!(
                "crate graph: package `{name}` is documented but is not a workspace member"
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    const METADATA: &str = r#"{
        "workspace_members": ["id-events", "id-pool", "id-client"],
        "packages": [
            {"id": "id-events", "name": "mongo-events", "dependencies": [
                {"name": "bson", "kind": null}
            ]},
            {"id": "id-pool", "name": "mongo-pool", "dependencies": [
                {"name": "mongo-events", "kind": null},
                {"name": "tokio", "kind": null},
                {"name": "mongo-client", "kind": "dev"}
            ]},
            {"id": "id-client", "name": "mongo-client", "dependencies": [
                {"name": "mongo-pool", "kind": null},
                {"name": "mongo-events", "kind": "build"},
                {"name": "serde", "kind": "build"}
            ]}
        ]
    }"#;

    fn graph(edges: &[(&str, &[&str])]) -> Graph {
        edges
            .iter()
            .map(|(n, d)| (n.to_string(), d.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn metadata_keeps_normal_and_build_edges_between_members() {
        let (g, order) = from_metadata(METADATA).unwrap();
        assert_eq!(order, ["mongo-events", "mongo-pool", "mongo-client"]);
        assert_eq!(
            g,
            graph(&[
                ("mongo-events", &[]),
                ("mongo-pool", &["mongo-events"]),
                ("mongo-client", &["mongo-events", "mongo-pool"]),
            ])
        );
        assert!(from_metadata("{}").is_err());
        assert!(from_metadata("not json").is_err());
    }

    fn doc(body: &str) -> String {
        format!("# Architecture\n\n## Code map\n\n{BEGIN}\n```text\n{body}```\n{END}\n\nmore\n")
    }

    #[test]
    fn architecture_block_is_parsed() {
        let text = doc("mongo-events: (none)\nmongo-pool: mongo-events\n\
                        mongo-client: mongo-events, mongo-pool\n");
        let g = from_architecture(&text).unwrap();
        assert_eq!(
            g,
            graph(&[
                ("mongo-events", &[]),
                ("mongo-pool", &["mongo-events"]),
                ("mongo-client", &["mongo-events", "mongo-pool"]),
            ])
        );
        let (actual, order) = from_metadata(METADATA).unwrap();
        assert!(compare(&g, &actual, &order).is_empty());
    }

    #[test]
    fn malformed_blocks_are_reported() {
        assert!(from_architecture("# Architecture\n").unwrap_err()[0].contains("missing"));
        assert!(from_architecture(&format!("{BEGIN}\nx: (none)\n")).is_err());
        let unsorted = from_architecture(&doc("a: c, b\n")).unwrap_err();
        assert!(unsorted[0].contains("not sorted"), "{unsorted:?}");
        let twice = from_architecture(&doc("a: (none)\na: b\n")).unwrap_err();
        assert!(twice[0].contains("listed twice"), "{twice:?}");
        let no_colon = from_architecture(&doc("a b\n")).unwrap_err();
        assert!(no_colon[0].contains("not `package: deps`"), "{no_colon:?}");
        let empty = from_architecture(&doc("a:\n")).unwrap_err();
        assert!(empty[0].contains("(none)"), "{empty:?}");
    }

    #[test]
    fn differences_are_named() {
        let (actual, order) = from_metadata(METADATA).unwrap();
        let documented = graph(&[
            ("mongo-events", &[]),
            ("mongo-pool", &["mongo-client"]),
            ("mongo-sdam", &["mongo-events"]),
        ]);
        let p = compare(&documented, &actual, &order);
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].contains("`mongo-pool` differ"), "{}", p[0]);
        assert!(p[0].contains("not documented: mongo-events"), "{}", p[0]);
        assert!(
            p[0].contains("documented but absent: mongo-client"),
            "{}",
            p[0]
        );
        assert!(p[0].ends_with("`mongo-pool: mongo-events`"), "{}", p[0]);
        assert!(p[1].contains("`mongo-client` is missing"), "{}", p[1]);
        assert!(
            p[1].contains("`mongo-client: mongo-events, mongo-pool`"),
            "{}",
            p[1]
        );
        assert!(p[2].contains("`mongo-sdam` is documented but"), "{}", p[2]);
    }

    #[test]
    fn leaves_are_written_none() {
        assert_eq!(line("a", &BTreeSet::new()), "a: (none)");
        let deps = ["c", "b"].iter().map(|s| s.to_string()).collect();
        assert_eq!(line("a", &deps), "a: b, c");
    }
}
