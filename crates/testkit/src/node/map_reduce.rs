//! `mapReduce` with `out: {inline: 1}`: the matching documents (`query`, `sort`, `limit`)
//! go through the `map` function (`this` the document, `emit(key, value)` collecting), each
//! key with more than one value through `reduce`, and then `finalize` when given; the
//! results come back as `{_id: key, value}` in key order, as mongod returns them. The
//! functions run in QuickJS (feature `js`); without it the command is refused as by a mongod
//! started with `--noscripting`. Output to a collection is not implemented (refused).

use bson::{Bson, Document};

use super::Node;
#[cfg(feature = "js")]
use super::args::ok;
use super::args::{coll_arg, opt_count, opt_doc};
use crate::error::{CmdResult, CommandError};
use crate::query;

/// mongod's JSInterpreterFailure.
const JS_INTERPRETER_FAILURE: i32 = 139;

impl Node {
    pub(super) fn map_reduce(&self, db: &str, cmd: &Document) -> CmdResult<Document> {
        let coll = coll_arg(cmd, "mapReduce")?;
        let map = code_arg(cmd, "map")?;
        let reduce = code_arg(cmd, "reduce")?;
        let finalize = match cmd.get("finalize") {
            None | Some(Bson::Null) => None,
            Some(_) => Some(code_arg(cmd, "finalize")?),
        };
        match cmd.get("out") {
            Some(Bson::Document(out)) if out.contains_key("inline") => {}
            Some(_) => {
                return Err(CommandError::new(
                    2,
                    "BadValue",
                    "the testkit's mapReduce only writes its output inline (out: {inline: 1})",
                ));
            }
            None => {
                return Err(CommandError::failed_to_parse(
                    "BSON field 'out' is missing but a required field",
                ));
            }
        }
        let empty = Document::new();
        let filter = opt_doc(cmd, "query")?.unwrap_or(&empty);
        let ctx = query::QueryCtx::of_command(cmd)?;
        let mut docs = self.filtered(db, coll, filter, &ctx)?;
        if let Some(sort) = opt_doc(cmd, "sort")? {
            query::sort_docs_in(&mut docs, sort, None)?;
        }
        if let Some(limit) = opt_count(cmd, "limit")? {
            if limit > 0 {
                docs.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            }
        }
        run(&docs, map, reduce, finalize)
    }
}

/// A function argument: JavaScript code or a string.
fn code_arg<'a>(cmd: &'a Document, key: &str) -> CmdResult<&'a str> {
    match cmd.get(key) {
        Some(Bson::JavaScriptCode(s) | Bson::String(s)) => Ok(s),
        Some(Bson::JavaScriptCodeWithScope(c)) => Ok(&c.code),
        _ => Err(CommandError::type_mismatch(format!(
            "'{key}' must be of type JavaScript code or string"
        ))),
    }
}

#[cfg(not(feature = "js"))]
fn run(_: &[Document], _: &str, _: &str, _: Option<&str>) -> CmdResult<Document> {
    Err(CommandError::new(
        JS_INTERPRETER_FAILURE,
        "JSInterpreterFailure",
        "no JavaScript engine: mapReduce needs the testkit's `js` feature (as mongod started \
         with --noscripting)",
    ))
}

#[cfg(feature = "js")]
fn run(docs: &[Document], map: &str, reduce: &str, finalize: Option<&str>) -> CmdResult<Document> {
    let input: Vec<serde_json::Value> = docs
        .iter()
        .map(|d| Bson::Document(d.clone()).into_relaxed_extjson())
        .collect();
    let input = serde_json::Value::Array(input).to_string();
    // The functions close over `emit`; keys are grouped by their JSON spelling, and each
    // key's values are reduced when there is more than one (mongod's rule).
    let program = format!(
        "(function() {{\n\
         var __docs = {input};\n\
         var __groups = {{}}; var __keys = [];\n\
         function emit(k, v) {{ var s = JSON.stringify(k);\n\
           if (!(s in __groups)) {{ __groups[s] = []; __keys.push(k); }}\n\
           __groups[s].push(v); }}\n\
         var __map = ({map});\n\
         var __reduce = ({reduce});\n\
         var __finalize = ({finalize});\n\
         for (var i = 0; i < __docs.length; i++) {{ __map.call(__docs[i]); }}\n\
         var out = [];\n\
         for (var j = 0; j < __keys.length; j++) {{\n\
           var k = __keys[j]; var vs = __groups[JSON.stringify(k)];\n\
           var v = vs.length === 1 ? vs[0] : __reduce(k, vs);\n\
           if (__finalize) {{ v = __finalize(k, v); }}\n\
           out.push({{_id: k, value: v}}); }}\n\
         return JSON.stringify(out);\n\
         }})()",
        finalize = finalize.unwrap_or("null"),
    );
    let failed = |e: &dyn std::fmt::Display| {
        CommandError::new(
            JS_INTERPRETER_FAILURE,
            "JSInterpreterFailure",
            format!("mapReduce: {e}"),
        )
    };
    let runtime = rquickjs::Runtime::new().map_err(|e| failed(&e))?;
    runtime.set_memory_limit(64 << 20);
    let context = rquickjs::Context::full(&runtime).map_err(|e| failed(&e))?;
    let json: String = context.with(|ctx| {
        ctx.eval::<String, _>(program.as_str())
            .map_err(|e| match e {
                rquickjs::Error::Exception => {
                    let thrown = ctx.catch();
                    failed(&format!("{thrown:?}"))
                }
                other => failed(&other),
            })
    })?;
    let value: serde_json::Value = serde_json::from_str(&json).map_err(|e| failed(&e))?;
    let Bson::Array(results) = Bson::try_from(value).map_err(|e| failed(&e))? else {
        return Err(failed(&"the output is not an array"));
    };
    let mut results: Vec<Document> = results
        .into_iter()
        .filter_map(|r| match r {
            Bson::Document(d) => Some(d),
            _ => None,
        })
        .collect();
    query::sort_docs_in(&mut results, &bson::doc! { "_id": 1 }, None)?;
    Ok(ok(bson::doc! { "results": results }))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bson::{Bson, Document, doc};

    use super::super::{ConnState, Node};
    use crate::options::ServerOptions;
    use crate::store::Store;
    use crate::topology::Topology;

    fn node_with_docs() -> (Node, ConnState) {
        let node = Node::new(
            ServerOptions::default(),
            Arc::new(Store::new()),
            Arc::default(),
            Arc::new(Topology::standalone()),
            0,
        );
        let mut conn = ConnState::new(1);
        let docs: Vec<Document> = (1..=4)
            .map(|i| doc! {"_id": i, "x": i, "even": i % 2 == 0})
            .collect();
        let reply = node
            .execute("db", doc! {"insert": "c", "documents": docs}, &mut conn)
            .reply;
        assert_eq!(reply.get_i32("n").ok(), Some(4), "{reply}");
        (node, conn)
    }

    fn map_reduce(node: &Node, conn: &mut ConnState, extra: Document) -> Document {
        let mut cmd = doc! {
            "mapReduce": "c",
            "map": Bson::JavaScriptCode("function() { emit(this.even, this.x); }".into()),
            "reduce": Bson::JavaScriptCode(
                "function(k, vs) { return vs.reduce((a, b) => a + b); }".into(),
            ),
            "out": {"inline": 1},
        };
        cmd.extend(extra);
        node.execute("db", cmd, conn).reply
    }

    #[cfg(feature = "js")]
    #[test]
    fn map_reduce_groups_reduces_and_finalizes_in_key_order() {
        let (node, mut conn) = node_with_docs();
        let reply = map_reduce(&node, &mut conn, doc! {});
        let results = reply.get_array("results").unwrap();
        assert_eq!(
            results,
            &vec![
                Bson::Document(doc! {"_id": false, "value": 4}),
                Bson::Document(doc! {"_id": true, "value": 6}),
            ],
            "{reply}"
        );
        // A query narrows the input; a single value per key is not reduced; finalize runs.
        let reply = map_reduce(
            &node,
            &mut conn,
            doc! {
                "query": {"x": {"$gte": 3}},
                "finalize": Bson::JavaScriptCode("function(k, v) { return v * 10; }".into()),
            },
        );
        let results = reply.get_array("results").unwrap();
        assert_eq!(
            results,
            &vec![
                Bson::Document(doc! {"_id": false, "value": 30}),
                Bson::Document(doc! {"_id": true, "value": 40}),
            ],
            "{reply}"
        );
        // A function that throws is a JSInterpreterFailure, not a panic.
        let reply = map_reduce(
            &node,
            &mut conn,
            doc! {"map": Bson::JavaScriptCode("function() { throw new Error('boom'); }".into())},
        );
        assert_eq!(reply.get_i32("code").ok(), Some(139), "{reply}");
    }

    #[cfg(not(feature = "js"))]
    #[test]
    fn map_reduce_without_an_engine_is_refused() {
        let (node, mut conn) = node_with_docs();
        let reply = map_reduce(&node, &mut conn, doc! {});
        assert_eq!(reply.get_i32("code").ok(), Some(139), "{reply}");
    }

    #[test]
    fn output_to_a_collection_is_refused() {
        let (node, mut conn) = node_with_docs();
        let reply = map_reduce(&node, &mut conn, doc! {"out": "target"});
        assert_eq!(reply.get_i32("code").ok(), Some(2), "{reply}");
    }
}
