//! The benchmark spec's data sets, read from its `single_and_multi_document.tgz` (never copied
//! into the repository): SMALL_DOC and TWEET as documents, with the sizes the spec scores
//! them by.

use std::io::Read as _;
use std::path::Path;

use bson::Document;

use crate::Error;

/// The spec's score size of SMALL_DOC (its source file), in bytes.
pub(crate) const SMALL_DOC_BYTES: u64 = 275;
/// The spec's score size of TWEET, in bytes.
pub(crate) const TWEET_BYTES: u64 = 1622;

/// The documents the tasks use.
#[derive(Debug, Clone)]
pub(crate) struct DataSets {
    /// SMALL_DOC (about 250 encoded bytes).
    pub(crate) small: Document,
    /// TWEET (a sample tweet, about 1.6 kB).
    pub(crate) tweet: Document,
}

/// Reads SMALL_DOC and TWEET out of `tgz` (the spec's `single_and_multi_document.tgz`).
///
/// # Errors
/// An unreadable archive, a missing member, a member that is not a JSON object.
pub(crate) fn load(tgz: &Path) -> Result<DataSets, Error> {
    let file =
        std::fs::File::open(tgz).map_err(|e| format!("cannot open {}: {e}", tgz.display()))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let (mut small, mut tweet) = (None, None);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = entry
            .path()?
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let slot = match name.as_str() {
            "small_doc.json" => &mut small,
            "tweet.json" => &mut tweet,
            _ => continue,
        };
        let mut text = String::new();
        entry.read_to_string(&mut text)?;
        *slot = Some(parse_document(&text).map_err(|e| format!("{name}: {e}"))?);
    }
    match (small, tweet) {
        (Some(small), Some(tweet)) => Ok(DataSets { small, tweet }),
        _ => Err(format!(
            "{} lacks small_doc.json or tweet.json (give the spec's single_and_multi_document.tgz)",
            tgz.display()
        )
        .into()),
    }
}

/// One JSON object as a document (integers as Int32 where they fit, else Int64).
fn parse_document(text: &str) -> Result<Document, Error> {
    match serde_json::from_str::<serde_json::Value>(text)? {
        serde_json::Value::Object(map) => Ok(Document::try_from(map)?),
        _ => Err("not a JSON object".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_objects_become_documents_and_other_json_is_refused() {
        let d = parse_document(r#"{"a": 1, "b": 22773233453, "c": [true, null], "d": "x"}"#)
            .unwrap_or_default();
        assert_eq!(d.get_i32("a").ok(), Some(1));
        assert_eq!(d.get_i64("b").ok(), Some(22_773_233_453));
        assert_eq!(d.get_str("d").ok(), Some("x"));
        assert!(parse_document("[1, 2]").is_err());
        assert!(parse_document("{").is_err());
    }
}
