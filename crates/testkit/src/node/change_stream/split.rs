//! `$changeStreamSplitLargeEvent` (MongoDB 7.0, 6.0.9): the last stage of a change stream's
//! pipeline, which returns an event whose BSON passes 16 MiB as fragments. Each fragment
//! holds the event's top-level fields in order, as many as fit, after its own `_id` (the
//! event's resume token with the fragment's number, so that a stream resumed from it goes
//! on with the next fragment) and `splitEvent: {fragment, of}`.

use bson::{Bson, Document, doc};

use crate::error::{CmdResult, CommandError};

/// The stage's name.
const STAGE: &str = "$changeStreamSplitLargeEvent";

/// BSONObjectTooLarge: one field alone does not fit in a fragment.
const TOO_LARGE: i32 = 10334;

/// Takes the stage off the end of `stages`: whether it was there. Anywhere else, or with
/// an argument other than `{}`, it is an error, as on mongod; servers before 7.0 do not
/// know it (`known`).
pub(super) fn take_stage(stages: &mut Vec<Bson>, known: bool) -> CmdResult<bool> {
    let arg_of = |s: &Bson| s.as_document().and_then(|d| d.get(STAGE)).cloned();
    let Some(pos) = stages.iter().position(|s| arg_of(s).is_some()) else {
        return Ok(false);
    };
    if !known {
        return Err(CommandError::new(
            40324,
            "Location40324",
            format!("Unrecognized pipeline stage name: '{STAGE}'"),
        ));
    }
    if pos + 1 != stages.len() {
        return Err(CommandError::new(
            7_182_802,
            "Location7182802",
            format!("{STAGE} must be the last stage in the pipeline"),
        ));
    }
    match stages.pop().as_ref().and_then(arg_of) {
        Some(Bson::Document(d)) if d.is_empty() => Ok(true),
        _ => Err(CommandError::new(
            7_182_800,
            "Location7182800",
            format!("{STAGE} accepts only an empty object as an argument"),
        )),
    }
}

/// The BSON size of `doc` (0 when it does not encode, which leaves it whole).
fn size_of(doc: &Document) -> usize {
    doc.to_vec().map(|v| v.len()).unwrap_or(0)
}

/// The resume token of fragment `n` (from 1) of the event whose token is `token`.
fn fragment_token(token: &Document, n: usize) -> Document {
    let data = token.get_str("_data").unwrap_or_default();
    doc! { "_data": format!("{data}{n:04X}") }
}

/// The fragment number a resume token names (`None`: a whole event, or not a token).
pub(super) fn fragment_of(token: &Bson) -> Option<usize> {
    let data = token.as_document()?.get_str("_data").ok()?;
    let suffix = data.get(36..).filter(|s| s.len() == 4)?;
    usize::from_str_radix(suffix, 16).ok()
}

/// The event's token without a fragment suffix (what `Token::parse` reads).
pub(super) fn whole_token(token: &Bson) -> Bson {
    match (token, fragment_of(token)) {
        (Bson::Document(d), Some(_)) => {
            let data = d.get_str("_data").unwrap_or_default();
            Bson::Document(doc! { "_data": data.get(..36).unwrap_or(data) })
        }
        _ => token.clone(),
    }
}

/// `event` as fragments of at most `max` bytes each (just `event` when it fits), from
/// fragment `skip + 1` on (a stream resumed from fragment `skip`).
///
/// # Errors
/// BSONObjectTooLarge when one field does not fit in a fragment.
pub(super) fn fragments(event: Document, max: usize, skip: usize) -> CmdResult<Vec<Document>> {
    if size_of(&event) <= max {
        return Ok(vec![event]);
    }
    let token = event.get_document("_id").cloned().unwrap_or_default();
    // A fragment's own fields, at their largest (a fragment number of four hex digits).
    let overhead = size_of(&doc! {
        "_id": fragment_token(&token, 0xFFFF),
        "splitEvent": { "fragment": i32::MAX, "of": i32::MAX },
    });
    let mut groups: Vec<Vec<(String, Bson)>> = Vec::new();
    let mut current: Vec<(String, Bson)> = Vec::new();
    let mut used = overhead;
    for (key, value) in event {
        if key == "_id" {
            continue;
        }
        // An element's size: the document holding only it, less the document's 5 bytes.
        let len = size_of(&doc! { key.clone(): value.clone() }).saturating_sub(5);
        if overhead + len > max {
            return Err(CommandError::new(
                TOO_LARGE,
                "BSONObjectTooLarge",
                format!("the change event's field '{key}' does not fit in a fragment"),
            ));
        }
        if used + len > max && !current.is_empty() {
            groups.push(std::mem::take(&mut current));
            used = overhead;
        }
        used += len;
        current.push((key, value));
    }
    if !current.is_empty() {
        groups.push(current);
    }
    let of = groups.len();
    Ok(groups
        .into_iter()
        .enumerate()
        .skip(skip)
        .map(|(i, fields)| {
            let n = i + 1;
            let mut d = doc! {
                "_id": fragment_token(&token, n),
                "splitEvent": {
                    "fragment": i32::try_from(n).unwrap_or(i32::MAX),
                    "of": i32::try_from(of).unwrap_or(i32::MAX),
                },
            };
            d.extend(fields);
            d
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_event_splits_in_field_order_and_a_small_one_stays_whole() {
        let token = doc! { "_data": "82".to_owned() + &"0".repeat(34) };
        let small = doc! { "_id": token.clone(), "operationType": "insert" };
        assert_eq!(fragments(small.clone(), 1000, 0).unwrap(), vec![small]);

        let big = doc! {
            "_id": token.clone(),
            "operationType": "update",
            "a": "x".repeat(600),
            "b": "y".repeat(600),
        };
        let parts = fragments(big.clone(), 1000, 0).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(
            parts[0].get_document("splitEvent").unwrap(),
            &doc! {"fragment": 1, "of": 2}
        );
        assert_eq!(
            parts[1].get_document("splitEvent").unwrap(),
            &doc! {"fragment": 2, "of": 2}
        );
        assert!(parts[0].contains_key("a") && parts[0].contains_key("operationType"));
        assert!(parts[1].contains_key("b") && !parts[1].contains_key("a"));
        assert!(parts.iter().all(|p| size_of(p) <= 1000));
        let t1 = Bson::Document(parts[0].get_document("_id").unwrap().clone());
        assert_eq!(fragment_of(&t1), Some(1));
        assert_eq!(whole_token(&t1), Bson::Document(token.clone()));
        assert_eq!(fragment_of(&Bson::Document(token)), None);
        // Resumed after fragment 1: only fragment 2 comes.
        let rest = fragments(big.clone(), 1000, 1).unwrap();
        assert_eq!(rest, parts[1..].to_vec());
        // A field larger than a fragment cannot be split.
        let err = fragments(big, 500, 0).unwrap_err();
        assert_eq!(err.code, TOO_LARGE);
    }

    #[test]
    fn the_stage_must_come_last_with_an_empty_argument() {
        let split = Bson::Document(doc! { STAGE: {} });
        let matching = Bson::Document(doc! { "$match": {} });
        let mut stages = vec![matching.clone(), split.clone()];
        assert!(take_stage(&mut stages, true).unwrap());
        assert_eq!(stages, vec![matching.clone()]);
        let mut none = vec![matching.clone()];
        assert!(!take_stage(&mut none, true).unwrap());
        let mut first = vec![split.clone(), matching];
        assert_eq!(take_stage(&mut first, true).unwrap_err().code, 7_182_802);
        let mut arg = vec![Bson::Document(doc! { STAGE: { "x": 1 } })];
        assert_eq!(take_stage(&mut arg, true).unwrap_err().code, 7_182_800);
        let mut old = vec![split];
        assert_eq!(take_stage(&mut old, false).unwrap_err().code, 40324);
    }
}
