//! The logging spec's shared rules, for every component's log messages: the `tracing` targets
//! of the components, the maximum document length (`MONGODB_LOG_MAX_DOCUMENT_LENGTH`, or set
//! in code) and the truncation of documents and error texts to it.
//!
//! Every crate of the workspace writes its log messages through `tracing` with these targets
//! and this truncation: command messages (`mongo-client`), connection-pool messages
//! (`mongo-pool`), topology and server-selection messages (`mongo-sdam`). Documents become
//! relaxed extended JSON in O(max length), not O(document length): the writer stops once it
//! has more than it may show.
//!
//! ```
//! use bson::doc;
//! use mongo_events::log;
//!
//! assert_eq!(log::document_json_with(&doc! {"ping": 1}, 100), r#"{"ping":1}"#);
//! assert_eq!(log::truncate("abcdef".to_owned(), 3), "abc...");
//! ```

use std::fmt::Write as _;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use bson::{Bson, Document};

/// The `tracing` target of the `command` component (command monitoring messages).
pub const COMMAND_TARGET: &str = "mongo::command";
/// The `tracing` target of the `connection` component (CMAP messages).
pub const CONNECTION_TARGET: &str = "mongo::connection";
/// The `tracing` target of the `topology` component (SDAM messages).
pub const TOPOLOGY_TARGET: &str = "mongo::topology";
/// The `tracing` target of the `serverSelection` component.
pub const SERVER_SELECTION_TARGET: &str = "mongo::server_selection";

/// The default maximum length of a document in a log message.
pub const DEFAULT_MAX_DOCUMENT_LENGTH: usize = 1000;
/// The environment variable read when no length was set with [`set_max_document_length`].
pub const MAX_DOCUMENT_LENGTH_ENV: &str = "MONGODB_LOG_MAX_DOCUMENT_LENGTH";

/// `usize::MAX` means "not set programmatically".
static MAX_DOCUMENT_LENGTH: AtomicUsize = AtomicUsize::new(usize::MAX);
static ENV_MAX_DOCUMENT_LENGTH: OnceLock<usize> = OnceLock::new();

/// Sets the maximum length (in bytes of UTF-8, rounded down to a character boundary) of
/// documents in log messages, for the whole process; `None` returns to the environment
/// variable [`MAX_DOCUMENT_LENGTH_ENV`] or the default of 1000. Programmatic configuration
/// wins over the environment.
pub fn set_max_document_length(length: Option<usize>) {
    MAX_DOCUMENT_LENGTH.store(length.unwrap_or(usize::MAX), Ordering::Relaxed);
}

/// The maximum document length in effect: set with [`set_max_document_length`], else the
/// environment variable when it holds a valid integer, else 1000.
pub fn max_document_length() -> usize {
    let set = MAX_DOCUMENT_LENGTH.load(Ordering::Relaxed);
    if set != usize::MAX {
        return set;
    }
    *ENV_MAX_DOCUMENT_LENGTH.get_or_init(|| {
        std::env::var(MAX_DOCUMENT_LENGTH_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(DEFAULT_MAX_DOCUMENT_LENGTH)
    })
}

/// Truncates `text` to at most `max` bytes (rounded down to a character boundary) and appends
/// `...` when anything was cut; the ellipsis does not count toward `max`.
pub fn truncate(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str("...");
    text
}

/// A document as relaxed extended JSON (keys in the document's order), truncated to
/// [`max_document_length`].
pub fn document_json(document: &Document) -> String {
    document_json_with(document, max_document_length())
}

/// A document as relaxed extended JSON, truncated to `max` bytes.
pub fn document_json_with(document: &Document, max: usize) -> String {
    let mut out = String::new();
    write_document(&mut out, document, max);
    truncate(out, max)
}

/// An error (or any displayable value) as text truncated to [`max_document_length`]: errors
/// may carry whole server replies, which the logging spec wants truncated like documents.
pub fn display_truncated<T: std::fmt::Display + ?Sized>(value: &T) -> String {
    truncate(value.to_string(), max_document_length())
}

/// Writes `document` as relaxed extended JSON, stopping early once `out` is longer than
/// `limit` (the caller truncates anyway).
fn write_document(out: &mut String, document: &Document, limit: usize) {
    out.push('{');
    for (i, (key, value)) in document.iter().enumerate() {
        if out.len() > limit {
            return;
        }
        if i > 0 {
            out.push(',');
        }
        write_json_string(out, key);
        out.push(':');
        write_value(out, value, limit);
    }
    out.push('}');
}

fn write_value(out: &mut String, value: &Bson, limit: usize) {
    match value {
        Bson::Document(d) => write_document(out, d, limit),
        Bson::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if out.len() > limit {
                    return;
                }
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item, limit);
            }
            out.push(']');
        }
        Bson::String(s) => write_json_string(out, s),
        other => out.push_str(&other.clone().into_relaxed_extjson().to_string()),
    }
}

fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn truncate_appends_ellipsis_on_a_char_boundary() {
        assert_eq!(truncate("abc".to_string(), 3), "abc");
        assert_eq!(truncate("abcd".to_string(), 3), "abc...");
        assert_eq!(truncate("a\u{e9}".to_string(), 2), "a...");
        assert_eq!(truncate(String::new(), 0), "");
    }

    #[test]
    fn documents_are_relaxed_extended_json_in_order() {
        let oid = bson::oid::ObjectId::parse_str("0123456789abcdef01234567").unwrap();
        let d = doc! {"z": 1, "a": "q\"\n", "n": [1_i64, 2.5, {"b": true}], "id": oid,
        "nil": null};
        assert_eq!(
            document_json_with(&d, 1000),
            r#"{"z":1,"a":"q\"\n","n":[1,2.5,{"b":true}],"id":{"$oid":"0123456789abcdef01234567"},"nil":null}"#
        );
    }

    #[test]
    fn long_documents_stop_early_and_are_cut_at_a_char_boundary() {
        let d = doc! { "s": "\u{e9}".repeat(1000), "more": "x".repeat(100_000) };
        let t = document_json_with(&d, 1000);
        assert!(t.ends_with("..."));
        assert!(t.len() <= 1003);
        let short = document_json_with(&doc! {"ping": 1}, 1000);
        assert_eq!(short, r#"{"ping":1}"#);
    }

    #[test]
    fn the_length_set_in_code_wins_and_none_restores_the_default() {
        set_max_document_length(Some(5));
        assert_eq!(max_document_length(), 5);
        assert_eq!(display_truncated(&"abcdefgh"), "abcde...");
        set_max_document_length(None);
        assert_ne!(max_document_length(), 5);
    }
}
