//! Loading a unified test file: extended JSON into BSON, the schema version check, and the
//! `runOnRequirements` rules.

use std::path::Path;

use bson::{Bson, Document};

/// The newest schema version this runner implements (the format's 1.28).
pub(crate) const SUPPORTED_SCHEMA: (u64, u64) = (1, 28);

/// One test file, its top-level fields kept as documents.
#[derive(Debug, Clone)]
pub(crate) struct TestFile {
    pub(crate) run_on: Vec<Document>,
    pub(crate) create_entities: Vec<Document>,
    pub(crate) initial_data: Vec<Document>,
    pub(crate) tests: Vec<TestCase>,
}

/// One test of a file.
#[derive(Debug, Clone)]
pub(crate) struct TestCase {
    pub(crate) description: String,
    pub(crate) run_on: Vec<Document>,
    pub(crate) skip_reason: Option<String>,
    pub(crate) operations: Vec<Document>,
    pub(crate) expect_events: Option<Vec<Document>>,
    pub(crate) expect_log_messages: Option<Vec<Document>>,
    pub(crate) outcome: Option<Vec<Document>>,
}

/// Reads a file as extended JSON (relaxed and canonical).
pub(crate) fn read_document(path: &Path) -> Result<Document, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))?;
    match Bson::try_from(json) {
        Ok(Bson::Document(d)) => Ok(d),
        Ok(_) => Err("the file is not a JSON object".into()),
        Err(e) => Err(format!("not extended JSON: {e}")),
    }
}

/// The descriptions of a file's tests, as far as they can be read (for reporting a file that
/// cannot run).
pub(crate) fn test_descriptions(doc: &Document) -> Vec<String> {
    doc.get_array("tests")
        .map(|tests| {
            tests
                .iter()
                .map(|t| {
                    t.as_document()
                        .and_then(|d| d.get_str("description").ok())
                        .unwrap_or("(no description)")
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Checks `schemaVersion`: the major version must be ours and the minor no newer.
pub(crate) fn check_schema(doc: &Document) -> Result<(), String> {
    let v = doc
        .get_str("schemaVersion")
        .map_err(|_| "schemaVersion is missing or not a string".to_string())?;
    let mut parts = v.split('.').map(str::parse::<u64>);
    let major = parts.next().and_then(Result::ok);
    let minor = parts.next().map_or(Some(0), Result::ok);
    match (major, minor) {
        (Some(maj), Some(min)) if maj == SUPPORTED_SCHEMA.0 && min <= SUPPORTED_SCHEMA.1 => Ok(()),
        (Some(_), Some(_)) => Err(format!(
            "schemaVersion {v} is not supported (this runner implements {}.{})",
            SUPPORTED_SCHEMA.0, SUPPORTED_SCHEMA.1
        )),
        _ => Err(format!("schemaVersion {v:?} is not a version")),
    }
}

fn docs(d: &Document, key: &str) -> Result<Vec<Document>, String> {
    match d.get(key) {
        None => Ok(Vec::new()),
        Some(Bson::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_document()
                    .cloned()
                    .ok_or_else(|| format!("{key}: every element must be an object"))
            })
            .collect(),
        Some(_) => Err(format!("{key} must be an array")),
    }
}

fn opt_docs(d: &Document, key: &str) -> Result<Option<Vec<Document>>, String> {
    if d.contains_key(key) {
        docs(d, key).map(Some)
    } else {
        Ok(None)
    }
}

/// Parses a whole file (after the schema check).
pub(crate) fn parse(doc: &Document) -> Result<TestFile, String> {
    check_schema(doc)?;
    let tests = docs(doc, "tests")?
        .into_iter()
        .map(|t| {
            Ok(TestCase {
                description: t
                    .get_str("description")
                    .map_err(|_| "a test has no description".to_string())?
                    .to_string(),
                run_on: docs(&t, "runOnRequirements")?,
                skip_reason: t.get_str("skipReason").ok().map(str::to_string),
                operations: docs(&t, "operations")?,
                expect_events: opt_docs(&t, "expectEvents")?,
                expect_log_messages: opt_docs(&t, "expectLogMessages")?,
                outcome: opt_docs(&t, "outcome")?,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(TestFile {
        run_on: docs(doc, "runOnRequirements")?,
        create_entities: docs(doc, "createEntities")?,
        initial_data: docs(doc, "initialData")?,
        tests,
    })
}

/// What a deployment offers, for `runOnRequirements`.
#[derive(Debug, Clone)]
pub(crate) struct ServerFacts {
    /// The server version, e.g. `[8, 0, 4]`.
    pub(crate) version: Vec<u64>,
    /// The format's topology name: single, replicaset, sharded, load-balanced.
    pub(crate) topology: &'static str,
    /// Whether authentication is on.
    pub(crate) auth: bool,
    /// `getParameter: "*"` of the server.
    pub(crate) parameters: Document,
}

/// Parses a version string ("4.4", "4.2.99") into numbers (missing parts are 0).
pub(crate) fn parse_version(s: &str) -> Vec<u64> {
    let mut v: Vec<u64> = s
        .split(['.', '-'])
        .take(3)
        .map(|p| p.parse().unwrap_or(0))
        .collect();
    v.resize(3, 0);
    v
}

/// Whether one `runOnRequirement` holds; `Err` names a key this runner does not know.
pub(crate) fn requirement_met(req: &Document, facts: &ServerFacts) -> Result<bool, String> {
    for (k, v) in req {
        let ok = match k.as_str() {
            "minServerVersion" => {
                facts.version >= parse_version(v.as_str().ok_or("minServerVersion: string")?)
            }
            "maxServerVersion" => {
                facts.version <= parse_version(v.as_str().ok_or("maxServerVersion: string")?)
            }
            "topologies" => v
                .as_array()
                .ok_or("topologies: array")?
                .iter()
                .any(|t| t.as_str() == Some(facts.topology)),
            // Not Atlas Serverless.
            "serverless" => v.as_str() != Some("require"),
            "auth" => v.as_bool() == Some(facts.auth),
            "authMechanism" => {
                // The testkit's deployments authenticate with SCRAM only.
                facts.auth && matches!(v.as_str(), Some("SCRAM-SHA-1" | "SCRAM-SHA-256"))
            }
            // No client-side encryption (no libmongocrypt).
            "csfle" => v.as_bool() != Some(true),
            "serverParameters" => {
                let want = v.as_document().ok_or("serverParameters: object")?;
                want.iter().all(|(name, value)| {
                    facts.parameters.get(name).is_some_and(|have| {
                        super::matching::matches(
                            value,
                            Some(have),
                            false,
                            &super::matching::NoEntities,
                        )
                        .is_ok()
                    })
                })
            }
            other => return Err(format!("unknown runOnRequirement key {other}")),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether any requirement of a list holds (an empty list always does).
pub(crate) fn any_met(reqs: &[Document], facts: &ServerFacts) -> Result<bool, String> {
    if reqs.is_empty() {
        return Ok(true);
    }
    for r in reqs {
        if requirement_met(r, facts)? {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn facts() -> ServerFacts {
        ServerFacts {
            version: vec![8, 0, 4],
            topology: "replicaset",
            auth: false,
            parameters: doc! {"enableTestCommands": true},
        }
    }

    #[test]
    fn schema_versions() {
        assert!(check_schema(&doc! {"schemaVersion": "1.0"}).is_ok());
        assert!(check_schema(&doc! {"schemaVersion": "1.28"}).is_ok());
        assert!(check_schema(&doc! {"schemaVersion": "1.29"}).is_err());
        assert!(check_schema(&doc! {"schemaVersion": "2.0"}).is_err());
        assert!(check_schema(&doc! {}).is_err());
    }

    #[test]
    fn requirements() {
        let f = facts();
        assert!(requirement_met(&doc! {"minServerVersion": "4.4"}, &f).unwrap());
        assert!(!requirement_met(&doc! {"maxServerVersion": "4.2.99"}, &f).unwrap());
        assert!(requirement_met(&doc! {"maxServerVersion": "8.0.99"}, &f).unwrap());
        assert!(!requirement_met(&doc! {"topologies": ["single", "sharded"]}, &f).unwrap());
        assert!(requirement_met(&doc! {"topologies": ["replicaset"], "auth": false}, &f).unwrap());
        assert!(!requirement_met(&doc! {"auth": true}, &f).unwrap());
        assert!(
            requirement_met(&doc! {"serverParameters": {"enableTestCommands": true}}, &f).unwrap()
        );
        assert!(!requirement_met(&doc! {"serverParameters": {"other": true}}, &f).unwrap());
        assert!(requirement_met(&doc! {"bogus": 1}, &f).is_err());
        assert!(any_met(&[], &f).unwrap());
        assert!(any_met(&[doc! {"auth": true}, doc! {"auth": false}], &f).unwrap());
    }
}
