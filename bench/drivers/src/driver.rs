//! What the runner asks of each client ([`Driver`]) and the typed TWEET both clients decode
//! into ([`Tweet`]).

use bson::oid::ObjectId;
use bson::{Bson, Document};
use serde::Deserialize;

use crate::Error;

/// One client under test. Each method is one "do task" of the spec (timed by the runner) or
/// a setup step (not timed). Every task checks its outcome (document counts), so that a client
/// cannot win by doing less.
pub(crate) trait Driver {
    /// The name in the report.
    fn name(&self) -> &'static str;

    /// Drops the client's benchmark database (setup and teardown).
    async fn drop_database(&self) -> Result<(), Error>;

    /// Drops `coll` and creates it again, empty, with the `create` command (before task).
    async fn recreate(&self, coll: &str) -> Result<(), Error>;

    /// Inserts `docs` with one `insert_many` (setup of the read tasks).
    async fn seed(&self, coll: &str, docs: Vec<Document>) -> Result<(), Error>;

    /// Task: `n` times `insert_one(doc)`, the driver generating each `_id`.
    async fn insert_one_each(&self, coll: &str, doc: &Document, n: usize) -> Result<(), Error>;

    /// Task: one ordered `insert_many(docs)`, the driver generating the `_id`s.
    async fn insert_many(&self, coll: &str, docs: Vec<Document>) -> Result<(), Error>;

    /// Task: `find_one({_id: i})` for each `i` in `1..=n`; each must find its document.
    async fn find_one_by_id(&self, coll: &str, n: i32) -> Result<(), Error>;

    /// Task: `find({})` and read every document through the cursor as a `Document`; returns
    /// how many.
    async fn find_many(&self, coll: &str) -> Result<usize, Error>;

    /// Task: as [`find_many`](Self::find_many), each document decoded into a [`Tweet`].
    async fn find_many_typed(&self, coll: &str) -> Result<usize, Error>;

    /// Task: `n` sequential `{ping: 1}` commands on `admin`.
    async fn ping(&self, n: usize) -> Result<(), Error>;
}

/// TWEET as a serde struct: every field of the spec's `tweet.json` (nulls as `Option`), so that
/// typed decoding does all the work untyped decoding does.
#[derive(Debug, Deserialize)]
#[allow(dead_code, reason = "decoded for the benchmark, never read")]
pub(crate) struct Tweet {
    #[serde(rename = "_id")]
    id_: ObjectId,
    text: String,
    in_reply_to_status_id: Option<i64>,
    retweet_count: Option<i64>,
    contributors: Option<Vec<i64>>,
    created_at: String,
    geo: Option<Document>,
    source: String,
    coordinates: Option<Document>,
    in_reply_to_screen_name: Option<String>,
    truncated: bool,
    entities: Entities,
    retweeted: bool,
    place: Option<Document>,
    user: User,
    favorited: bool,
    in_reply_to_user_id: Option<i64>,
    id: i64,
}

/// A tweet's `entities`.
#[derive(Debug, Deserialize)]
#[allow(dead_code, reason = "decoded for the benchmark, never read")]
struct Entities {
    user_mentions: Vec<Mention>,
    urls: Vec<Bson>,
    hashtags: Vec<Bson>,
}

/// One of `entities.user_mentions`.
#[derive(Debug, Deserialize)]
#[allow(dead_code, reason = "decoded for the benchmark, never read")]
struct Mention {
    indices: Vec<i32>,
    screen_name: String,
    name: String,
    id: i64,
}

/// A tweet's `user`.
#[derive(Debug, Deserialize)]
#[allow(dead_code, reason = "decoded for the benchmark, never read")]
struct User {
    friends_count: i64,
    profile_sidebar_fill_color: String,
    location: String,
    verified: bool,
    follow_request_sent: Option<bool>,
    favourites_count: i64,
    profile_sidebar_border_color: String,
    profile_image_url: String,
    geo_enabled: bool,
    created_at: String,
    description: String,
    time_zone: String,
    url: String,
    screen_name: String,
    notifications: Option<bool>,
    profile_background_color: String,
    listed_count: i64,
    lang: String,
    profile_background_image_url: String,
    statuses_count: i64,
    following: Option<bool>,
    profile_text_color: String,
    protected: bool,
    show_all_inline_media: bool,
    profile_background_tile: bool,
    name: String,
    contributors_enabled: bool,
    profile_link_color: String,
    followers_count: i64,
    id: i64,
    profile_use_background_image: bool,
    utc_offset: i64,
}
