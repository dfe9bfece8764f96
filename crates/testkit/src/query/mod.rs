//! The query engine, all on `bson::Document`: what the commands in `node/` call to match,
//! sort, project, update and aggregate documents. One file per concern:
//!
//! - `compare.rs`: the BSON comparison order, equality, numeric views, truthiness and sorting;
//! - `collation.rs`: string comparison under a command's `collation`;
//! - `context.rs`: a command's collation and `let` variables, given to every evaluation;
//! - `path.rs`: reading, setting and removing values at dotted paths;
//! - `filter.rs`: query filters (`$and`, `$gt`, `$in`, `$elemMatch`, `$type`, …);
//! - `validate.rs`: the parse-time checks of a filter (unknown operators, bad arguments);
//! - `where_js.rs`: `$where` without a JavaScript engine (`sleep(N) || true`);
//! - `projection.rs`: find-style projections;
//! - `expr.rs`: aggregation expressions (`"$path"`, `$$variables`, literals), with the
//!   operators in `expr_ops.rs` (`$eq`, `$and`, `$setField`, `$getField`, …);
//! - `update.rs`: update operators, replacements and the upsert seed;
//! - `update_pipeline.rs`: pipeline-style updates;
//! - `aggregate.rs`: the aggregation pipeline and its stages;
//! - `group.rs`: the `$group` stage and its accumulators.

mod aggregate;
mod collation;
mod compare;
mod context;
mod expr;
mod expr_ops;
mod filter;
mod group;
mod path;
mod projection;
mod update;
mod update_pipeline;
mod validate;
mod where_js;

pub(crate) use aggregate::run_pipeline_in;
pub(crate) use compare::{as_f64, sort_docs_in, truthy, values_equal};
pub(crate) use context::QueryCtx;
pub(crate) use filter::{matches, matches_in};
pub(crate) use path::lookup;
pub(crate) use projection::project_in;
pub(crate) use update::{apply_update, is_operator_update, upsert_seed};
pub(crate) use update_pipeline::{apply_pipeline_update, check_update_pipeline};
pub(crate) use validate::{FilterContext, check_filter};
pub(crate) use where_js::take_js_time;
