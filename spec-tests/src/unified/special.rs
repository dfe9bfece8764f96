//! The `testRunner` operations: fail points, event waits and counts, threads, connection
//! counts, topology records and waits, lsid and collection/index assertions, nested
//! `createEntities`, `wait` and `loop`.

use std::sync::Arc;
use std::time::Duration;

use super::BoxFuture;
use bson::{Bson, Document, doc};
use mongo_client::{ServerType, TopologyDescription};
use tracing::Instrument;

use super::entities::{self, Entity};
use super::runner::State;
use super::{Fail, events, ops};

fn arg_str<'a>(op: &str, args: &'a Document, key: &str) -> Result<&'a str, Fail> {
    args.get_str(key)
        .map_err(|_| Fail::runner(format!("{op}: {key} (a string) is required")))
}

fn arg_int(op: &str, args: &Document, key: &str) -> Result<i64, Fail> {
    args.get(key)
        .and_then(super::matching::as_f64)
        .filter(|f| f.is_finite())
        .map(|f| {
            #[allow(
                clippy::cast_possible_truncation,
                reason = "test-file counts and milliseconds are small integers"
            )]
            let n = f as i64;
            n
        })
        .ok_or_else(|| Fail::runner(format!("{op}: {key} (a number) is required")))
}

/// Runs one special operation.
pub(crate) fn run<'a>(
    state: &'a State,
    name: &'a str,
    args: &'a Document,
) -> BoxFuture<'a, Result<(), Fail>> {
    Box::pin(async move {
        match name {
            "failPoint" => {
                let client = state.entities.client(arg_str(name, args, "client")?)?;
                let fp = args
                    .get_document("failPoint")
                    .map_err(|_| Fail::runner("failPoint.failPoint is required"))?
                    .clone();
                let span = client.span.clone();
                client
                    .client
                    .run_command("admin", fp)
                    .instrument(span)
                    .await
                    .map_err(|e| Fail::runner(format!("configureFailPoint failed: {e}")))?;
                Ok(())
            }
            "targetedFailPoint" => super::transactions::targeted_fail_point(state, args).await,
            "assertEventCount" | "waitForEvent" => {
                let client = state.entities.client(arg_str(name, args, "client")?)?;
                let event = args
                    .get_document("event")
                    .map_err(|_| Fail::runner(format!("{name}: event is required")))?;
                let count = usize::try_from(arg_int(name, args, "count")?).unwrap_or(0);
                if name == "assertEventCount" {
                    let have =
                        events::count_matching(event, &client.events.snapshot(), &state.entities);
                    if have != count {
                        return Err(Fail::runner(format!(
                            "{count} events matching {event} expected, {have} seen"
                        )));
                    }
                    return Ok(());
                }
                let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
                loop {
                    let have =
                        events::count_matching(event, &client.events.snapshot(), &state.entities);
                    if have >= count {
                        return Ok(());
                    }
                    if tokio::time::Instant::now() >= deadline {
                        return Err(Fail::runner(format!(
                            "waitForEvent: {count} events matching {event} expected within 10 s, {have} seen"
                        )));
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            "runOnThread" => {
                let thread = state.entities.thread(arg_str(name, args, "thread")?)?;
                let op = args
                    .get_document("operation")
                    .map_err(|_| Fail::runner("runOnThread: operation is required"))?
                    .clone();
                let st = state.clone();
                thread.run(Box::pin(async move { ops::run_operation(&st, &op).await }))
            }
            "waitForThread" => {
                let thread = state.entities.thread(arg_str(name, args, "thread")?)?;
                thread
                    .wait()
                    .await
                    .map_err(|e| e.context("the thread's operation"))
            }
            "assertNumberConnectionsCheckedOut" => {
                let client = state.entities.client(arg_str(name, args, "client")?)?;
                let want = arg_int(name, args, "connections")?;
                // Check-ins of returned cursors and killCursors run on spawned tasks: give
                // them a moment before counting.
                let mut have = 0;
                for _ in 0..50 {
                    have = client
                        .events
                        .checked_out
                        .load(std::sync::atomic::Ordering::SeqCst);
                    if have == want {
                        return Ok(());
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                Err(Fail::runner(format!(
                    "{want} connections checked out expected, {have} are"
                )))
            }
            "recordTopologyDescription" => {
                let client = state.entities.client(arg_str(name, args, "client")?)?;
                let id = arg_str(name, args, "id")?;
                state.entities.insert(
                    id,
                    Entity::Topology(Box::new(client.client.topology_description())),
                )
            }
            "assertTopologyType" => {
                let td = topology(state, arg_str(name, args, "topologyDescription")?)?;
                let want = arg_str(name, args, "topologyType")?;
                let have = td.topology_type().name();
                if have == want {
                    Ok(())
                } else {
                    Err(Fail::runner(format!(
                        "topology type {want} expected, it is {have}"
                    )))
                }
            }
            "waitForPrimaryChange" => {
                let client = state.entities.client(arg_str(name, args, "client")?)?;
                let prior = topology(state, arg_str(name, args, "priorTopologyDescription")?)?;
                let timeout = match args.get("timeoutMS") {
                    Some(_) => Duration::from_millis(
                        u64::try_from(arg_int(name, args, "timeoutMS")?).unwrap_or(0),
                    ),
                    None => Duration::from_secs(10),
                };
                let old = primary(&prior);
                let changed = client
                    .client
                    .wait_for_topology(timeout, |td| match (primary(td), &old) {
                        (Some(p), Some(o)) => &p != o,
                        (Some(_), None) => true,
                        (None, _) => false,
                    })
                    .await;
                if changed {
                    Ok(())
                } else {
                    Err(Fail::runner(format!(
                        "the primary did not change within {timeout:?}"
                    )))
                }
            }
            "wait" => {
                let ms = arg_int(name, args, "ms")?;
                tokio::time::sleep(Duration::from_millis(u64::try_from(ms).unwrap_or(0))).await;
                Ok(())
            }
            "createEntities" => {
                let list: Vec<Document> = args
                    .get_array("entities")
                    .map_err(|_| Fail::runner("createEntities: entities is required"))?
                    .iter()
                    .filter_map(|e| e.as_document().cloned())
                    .collect();
                entities::create_entities(&list, &state.env, &state.entities).await
            }
            "assertSameLsidOnLastTwoCommands" | "assertDifferentLsidOnLastTwoCommands" => {
                let client = state.entities.client(arg_str(name, args, "client")?)?;
                let started: Vec<Document> = client
                    .events
                    .snapshot()
                    .into_iter()
                    .filter(|o| o.name == "commandStartedEvent")
                    .filter_map(|o| o.body.get_document("command").ok().cloned())
                    .collect();
                let [.., a, b] = started.as_slice() else {
                    return Err(Fail::runner(format!(
                        "{name}: fewer than two commands were observed"
                    )));
                };
                let (la, lb) = (a.get("lsid"), b.get("lsid"));
                let same = la.is_some() && la == lb;
                if same == (name == "assertSameLsidOnLastTwoCommands") {
                    Ok(())
                } else {
                    Err(Fail::runner(format!("{name}: lsids {la:?} and {lb:?}")))
                }
            }
            "assertCollectionExists" | "assertCollectionNotExists" => {
                let db = arg_str(name, args, "databaseName")?;
                let coll = arg_str(name, args, "collectionName")?;
                let reply = state
                    .env
                    .internal
                    .run_command(
                        db,
                        doc! {"listCollections": 1, "filter": {"name": coll}, "nameOnly": true},
                    )
                    .await
                    .map_err(|e| Fail::runner(format!("listCollections: {e}")))?;
                let exists = first_batch(&reply).is_some_and(|b| !b.is_empty());
                expect_exists(
                    name.ends_with("NotExists"),
                    exists,
                    &format!("collection {db}.{coll}"),
                )
            }
            "assertIndexExists" | "assertIndexNotExists" => {
                let db = arg_str(name, args, "databaseName")?;
                let coll = arg_str(name, args, "collectionName")?;
                let index = arg_str(name, args, "indexName")?;
                let reply = state
                    .env
                    .internal
                    .run_command(db, doc! {"listIndexes": coll})
                    .await;
                let exists = match reply {
                    Ok(r) => first_batch(&r).is_some_and(|b| {
                        b.iter().any(|i| {
                            i.as_document().and_then(|d| d.get_str("name").ok()) == Some(index)
                        })
                    }),
                    Err(e) if e.code() == Some(26) => false,
                    Err(e) => return Err(Fail::runner(format!("listIndexes: {e}"))),
                };
                expect_exists(
                    name.ends_with("NotExists"),
                    exists,
                    &format!("index {index} on {db}.{coll}"),
                )
            }
            "assertSessionDirty" | "assertSessionNotDirty" => {
                super::sessions::assert_dirty(&state.entities, args, name == "assertSessionDirty")
                    .await
            }
            "assertSessionTransactionState" => super::transactions::assert_state(state, args).await,
            "assertSessionPinned" | "assertSessionUnpinned" => {
                super::transactions::assert_pinned(state, args, name == "assertSessionPinned").await
            }
            "loop" => run_loop(state, args).await,
            other => Err(Fail::runner(format!("unknown special operation {other}"))),
        }
    })
}

fn expect_exists(negated: bool, exists: bool, what: &str) -> Result<(), Fail> {
    match (negated, exists) {
        (false, true) | (true, false) => Ok(()),
        (false, false) => Err(Fail::runner(format!("{what} does not exist"))),
        (true, true) => Err(Fail::runner(format!("{what} exists"))),
    }
}

fn first_batch(reply: &Document) -> Option<&Vec<Bson>> {
    reply
        .get_document("cursor")
        .ok()?
        .get_array("firstBatch")
        .ok()
}

fn topology(state: &State, name: &str) -> Result<TopologyDescription, Fail> {
    match state.entities.get(name)? {
        Entity::Topology(t) => Ok(*t),
        other => Err(Fail::runner(format!(
            "{name} is a {}, not a topology description",
            other.kind()
        ))),
    }
}

fn primary(td: &TopologyDescription) -> Option<mongo_client::ServerAddress> {
    td.servers()
        .find(|s| s.server_type == ServerType::RsPrimary)
        .map(|s| s.address.clone())
}

/// How long `loop` runs before the runner sends its termination signal (the format leaves the
/// signal to the workload executor; this runner's is a time budget).
const LOOP_BUDGET: Duration = Duration::from_millis(300);

/// `loop`: runs the operations over and over until the termination signal, storing errors,
/// failures, successes and iterations in entities when asked.
async fn run_loop(state: &State, args: &Document) -> Result<(), Fail> {
    let ops_list: Vec<Document> = args
        .get_array("operations")
        .map_err(|_| Fail::runner("loop: operations is required"))?
        .iter()
        .filter_map(|o| o.as_document().cloned())
        .collect();
    let store = |key: &str| -> Result<Option<Arc<parking_lot::Mutex<Vec<Document>>>>, Fail> {
        match args.get_str(key) {
            Ok(id) => {
                let list = Arc::new(parking_lot::Mutex::new(Vec::new()));
                state.entities.insert(id, Entity::Events(list.clone()))?;
                Ok(Some(list))
            }
            Err(_) => Ok(None),
        }
    };
    let errors = store("storeErrorsAsEntity")?;
    let failures = store("storeFailuresAsEntity")?;
    let successes_id = args.get_str("storeSuccessesAsEntity").ok();
    let iterations_id = args.get_str("storeIterationsAsEntity").ok();
    let (mut successes, mut iterations) = (0i64, 0i64);
    let deadline = tokio::time::Instant::now() + LOOP_BUDGET;
    'outer: while tokio::time::Instant::now() < deadline {
        for op in &ops_list {
            match ops::run_operation(state, op).await {
                Ok(()) => successes += 1,
                Err(e) if e.unsupported => return Err(e),
                Err(e) => {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0.0, |d| d.as_secs_f64());
                    let entry = doc! {"error": e.to_string(), "time": now};
                    // Without storeFailuresAsEntity, failures go with the errors.
                    match (&failures, &errors) {
                        (Some(f), _) => f.lock().push(entry),
                        (None, Some(er)) => er.lock().push(entry),
                        (None, None) => return Err(e),
                    }
                    iterations += 1;
                    continue 'outer;
                }
            }
        }
        iterations += 1;
    }
    if let Some(id) = successes_id {
        state
            .entities
            .insert(id, Entity::Bson(Bson::Int64(successes)))?;
    }
    if let Some(id) = iterations_id {
        state
            .entities
            .insert(id, Entity::Bson(Bson::Int64(iterations)))?;
    }
    Ok(())
}
