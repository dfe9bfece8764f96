//! One test from setup to outcome: pick a deployment, reset it, write `initialData`, create
//! the entities, run the operations, stop listening, check `expectEvents`,
//! `expectLogMessages` and `outcome`, and clean up (fail points off, clients closed).

use std::path::Path;
use std::sync::Arc;

use bson::{Bson, Document, doc};

use super::deployment::{Deployments, Env};
use super::entities::{self, Entities, Entity};
use super::file::{self, TestCase, TestFile};
use super::{Fail, TestResult, events, logs, matching, ops};
use crate::Context;

/// Shared by the operations of one test (and its threads).
#[derive(Clone)]
pub(crate) struct State {
    pub(crate) env: Arc<Env>,
    pub(crate) entities: Entities,
}

/// Runs every test of a file: (description, result).
pub(crate) async fn run_file(
    path: &Path,
    ctx: &Context,
    deployments: &mut Deployments,
) -> Vec<(String, TestResult)> {
    let doc = match file::read_document(path) {
        Ok(d) => d,
        Err(e) => return vec![("(file)".into(), TestResult::Failed(e))],
    };
    let parsed = match file::parse(&doc) {
        Ok(f) => f,
        Err(e) => {
            let names = file::test_descriptions(&doc);
            if names.is_empty() {
                return vec![("(file)".into(), TestResult::Failed(e))];
            }
            return names
                .into_iter()
                .map(|n| (n, TestResult::Failed(e.clone())))
                .collect();
        }
    };
    let mut out = Vec::new();
    for test in &parsed.tests {
        if !ctx.wants_test(&test.description) {
            continue;
        }
        let r = run_test(path, &parsed, test, deployments).await;
        out.push((test.description.clone(), r));
    }
    out
}

/// Tests a spec itself says do not apply to this driver: (file name, test description, why).
/// Each reason cites the spec text that makes the test conditional.
const NOT_APPLICABLE: &[(&str, &str, &str)] = &[
    (
        "connection-pool-options.json",
        "waitQueueSize should be included in connection pool created message when specified",
        "CMAP spec, Deprecated Options: waitQueueSize MUST NOT be implemented by a driver that \
         does not already have it; the logging test applies only to drivers that support it",
    ),
    (
        "connection-pool-options.json",
        "waitQueueMultiple should be included in connection pool created message when specified",
        "CMAP spec, Deprecated Options: waitQueueMultiple MUST NOT be implemented by a driver \
         that does not already have it; the logging test applies only to drivers that support it",
    ),
];

/// Official tests whose own numbers cannot produce what they expect from a correct driver:
/// (file name, test description, why). Counted skipped with the reason, never passed.
const SPEC_ERRATA: &[(&str, &str, &str)] = &[
    (
        "runCursorCommand.json",
        "Non-tailable cursor iteration timeoutMS is refreshed for getMore if timeoutMode is iteration - failure",
        "DRIVERS-2965: the getMore blocks 60 ms under a timeoutMS of 100 refreshed per \
         iteration, so a correct driver cannot time out; the same rule with 250 ms vs 200 ms \
         passes in non-tailable-cursors.json",
    ),
    (
        "runCursorCommand.json",
        "Tailable cursor iteration timeoutMS is refreshed for getMore - failure",
        "DRIVERS-2965: the getMore blocks 60 ms under a timeoutMS of 100 refreshed per \
         iteration, so a correct driver cannot time out; tailable-non-awaitData.json tests the \
         rule with 250 ms vs 200 ms",
    ),
    (
        "runCursorCommand.json",
        "Tailable cursor awaitData iteration timeoutMS is refreshed for getMore - failure",
        "DRIVERS-2965: no timeoutMS is set anywhere and the getMore blocks 60 ms, so no timeout \
         can occur; tailable-awaitData.json tests the rule with 250 ms vs 200 ms",
    ),
];

async fn run_test(
    path: &Path,
    f: &TestFile,
    test: &TestCase,
    deployments: &mut Deployments,
) -> TestResult {
    if let Some(reason) = &test.skip_reason {
        return TestResult::Skipped(format!("skipReason: {reason}"));
    }
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if let Some((_, _, why)) = NOT_APPLICABLE
        .iter()
        .find(|(file, desc, _)| *file == file_name && *desc == test.description)
    {
        return TestResult::Skipped(format!("not applicable: {why}"));
    }
    if let Some((_, _, why)) = SPEC_ERRATA
        .iter()
        .find(|(file, desc, _)| *file == file_name && *desc == test.description)
    {
        return TestResult::Skipped(format!("spec erratum: {why}"));
    }
    let env = match deployments.pick(&f.run_on, &test.run_on).await {
        Ok(Some(env)) => env,
        Ok(None) => {
            return TestResult::Skipped(
                "runOnRequirements: no testkit deployment meets them".into(),
            );
        }
        Err(e) => return TestResult::Failed(e.to_string()),
    };
    env.deployment.reset();
    let state = State {
        env: env.clone(),
        entities: Entities {
            fast_heartbeat: uses_fail_points(&test.operations),
            ..Entities::default()
        },
    };
    let result =
        match tokio::time::timeout(std::time::Duration::from_secs(60), execute(f, test, &state))
            .await
        {
            Ok(r) => r,
            Err(_) => Err(Fail::runner("the test did not finish within 60 s")),
        };
    cleanup(&state).await;
    match result {
        Ok(()) => TestResult::Passed,
        Err(f) if f.unsupported => TestResult::Unsupported(f.message),
        Err(f) => TestResult::Failed(f.message),
    }
}

/// Whether the operations (threads and loops included) configure a fail point.
fn uses_fail_points(ops: &[Document]) -> bool {
    ops.iter().any(|op| {
        matches!(op.get_str("name"), Ok("failPoint" | "targetedFailPoint"))
            || op.get_document("arguments").is_ok_and(|a| {
                a.get_document("operation")
                    .is_ok_and(|inner| uses_fail_points(std::slice::from_ref(inner)))
                    || a.get_array("operations").is_ok_and(|list| {
                        let docs: Vec<Document> = list
                            .iter()
                            .filter_map(|d| d.as_document().cloned())
                            .collect();
                        uses_fail_points(&docs)
                    })
            })
    })
}

async fn execute(f: &TestFile, test: &TestCase, state: &State) -> Result<(), Fail> {
    initial_data(&f.initial_data, &state.env)
        .await
        .map_err(|e| e.context("initialData"))?;
    entities::create_entities(&f.create_entities, &state.env, &state.entities)
        .await
        .map_err(|e| e.context("createEntities"))?;
    // Operations: the first failure ends them, but the listeners still stop below.
    let mut result = Ok(());
    for (i, op) in test.operations.iter().enumerate() {
        if let Err(e) = ops::run_operation(state, op).await {
            let name = op.get_str("name").unwrap_or("?");
            result = Err(e.context(format!("operation {i} ({name})")));
            break;
        }
    }
    // Stop listening, then turn the fail points off.
    for (_, e) in state.entities.all() {
        if let Entity::Client(c) = e {
            c.events.close();
            c.logs.close();
        }
    }
    state.env.deployment.clear_fail_points();
    result?;
    if let Some(expected) = &test.expect_events {
        for spec in expected {
            let client = state.entities.client(
                spec.get_str("client")
                    .map_err(|_| Fail::runner("expectEvents.client"))?,
            )?;
            events::expect_events(spec, &client.events.snapshot(), &state.entities).map_err(
                |e| {
                    Fail::runner(format!(
                        "expectEvents ({}): {e}",
                        spec.get_str("client").unwrap_or("?")
                    ))
                },
            )?;
        }
    }
    if let Some(expected) = &test.expect_log_messages {
        for spec in expected {
            let client = state.entities.client(
                spec.get_str("client")
                    .map_err(|_| Fail::runner("expectLogMessages.client"))?,
            )?;
            logs::expect_messages(spec, &client.logs.snapshot(), &state.entities).map_err(|e| {
                Fail::runner(format!(
                    "expectLogMessages ({}): {e}",
                    spec.get_str("client").unwrap_or("?")
                ))
            })?;
        }
    }
    if let Some(outcome) = &test.outcome {
        check_outcome(outcome, &state.env).await?;
    }
    Ok(())
}

async fn initial_data(data: &[Document], env: &Env) -> Result<(), Fail> {
    let c = &env.internal;
    for d in data {
        let db = d
            .get_str("databaseName")
            .map_err(|_| Fail::runner("databaseName"))?;
        let coll = d
            .get_str("collectionName")
            .map_err(|_| Fail::runner("collectionName"))?;
        let majority = doc! {"w": "majority"};
        for name in [
            coll.to_string(),
            format!("enxcol_.{coll}.esc"),
            format!("enxcol_.{coll}.ecoc"),
        ] {
            match c
                .run_command(db, doc! {"drop": &name, "writeConcern": majority.clone()})
                .await
            {
                Ok(_) => {}
                Err(e) if e.code() == Some(26) => {}
                Err(e) => return Err(Fail::runner(format!("drop {db}.{name}: {e}"))),
            }
        }
        let docs = d
            .get_array("documents")
            .map_err(|_| Fail::runner("documents"))?;
        let mut create = doc! {"create": coll};
        if let Ok(o) = d.get_document("createOptions") {
            create.extend(o.clone());
        }
        if d.contains_key("createOptions") || docs.is_empty() {
            create.insert("writeConcern", majority.clone());
            c.run_command(db, create)
                .await
                .map_err(|e| Fail::runner(format!("create {db}.{coll}: {e}")))?;
        }
        if !docs.is_empty() {
            c.run_command(
                db,
                doc! {"insert": coll, "documents": docs.clone(), "writeConcern": majority},
            )
            .await
            .map_err(|e| Fail::runner(format!("insert into {db}.{coll}: {e}")))?;
        }
    }
    Ok(())
}

async fn check_outcome(outcome: &[Document], env: &Env) -> Result<(), Fail> {
    for d in outcome {
        let db = d
            .get_str("databaseName")
            .map_err(|_| Fail::runner("databaseName"))?;
        let coll = d
            .get_str("collectionName")
            .map_err(|_| Fail::runner("collectionName"))?;
        let expected = d
            .get_array("documents")
            .map_err(|_| Fail::runner("documents"))?;
        let reply = env
            .internal
            .run_command(
                db,
                doc! {"find": coll, "sort": {"_id": 1}, "readConcern": {"level": "local"}, "batchSize": 100_000},
            )
            .await
            .map_err(|e| Fail::runner(format!("outcome: find on {db}.{coll}: {e}")))?;
        let actual = reply
            .get_document("cursor")
            .and_then(|c| c.get_array("firstBatch"))
            .cloned()
            .map_err(|_| {
                Fail::runner(format!(
                    "outcome: find on {db}.{coll} gave no cursor: {reply}"
                ))
            })?;
        if !matching::exact_eq(&Bson::Array(expected.clone()), &Bson::Array(actual.clone())) {
            return Err(Fail::runner(format!(
                "outcome {db}.{coll}: expected {}, found {}",
                Bson::Array(expected.clone()),
                Bson::Array(actual)
            )));
        }
    }
    Ok(())
}

async fn cleanup(state: &State) {
    for (_, e) in state.entities.all() {
        if let Entity::Thread(t) = &e {
            let _ = t.wait().await;
        }
    }
    for (_, e) in state.entities.all() {
        if let Entity::Cursor(c) = &e {
            c.lock().await.cursor.take();
        }
    }
    // Sessions end before their clients close, so that endSessions names them.
    for (_, e) in state.entities.all() {
        if let Entity::Session(s) = &e {
            s.session.lock().await.end_session();
        }
    }
    for (_, e) in state.entities.all() {
        if let Entity::Client(c) = &e {
            let span = c.span.clone();
            tracing::Instrument::instrument(c.client.shutdown(), span).await;
        }
    }
    state.entities.clear();
    state.env.deployment.clear_fail_points();
}
