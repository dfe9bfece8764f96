//! The undecoded cursor batch across the connection and the operation: the connection
//! leaves a reply's batch array as bytes (`conn::decode_body`) and the cursor reply keeps it
//! so, decoding each document when it is taken.

use bson::Document;

use crate::operation::CursorReply;

/// A reply packed with tiny documents: left undecoded, its batch costs about the
/// message's size (a decoded `Document` tree costs 12 to 30 times as much), and yields the
/// same documents.
#[test]
fn an_undecoded_batch_costs_about_the_message_size() {
    let mut array = bson::RawArrayBuf::new();
    for i in 0..50_000_i32 {
        array.push(bson::rawdoc! {"_id": i});
    }
    let raw = bson::rawdoc! {
        "cursor": {"id": 0_i64, "ns": "db.c", "firstBatch": array},
        "ok": 1.0,
    };
    let size = raw.as_bytes().len();
    let (body, batch) = crate::conn::decode_body(&raw, Some("firstBatch")).unwrap();
    assert!(
        !body
            .get_document("cursor")
            .unwrap()
            .contains_key("firstBatch")
    );
    let mut lazy = CursorReply::parse_with(body, "firstBatch", batch)
        .unwrap()
        .batch;
    assert_eq!(lazy.len(), 50_000);
    assert!(
        lazy.raw_heap_bytes() <= 2 * size,
        "{} bytes held for a {size}-byte message",
        lazy.raw_heap_bytes()
    );
    let eager = CursorReply::parse(Document::try_from(raw.as_ref()).unwrap(), "firstBatch")
        .unwrap()
        .batch
        .into_docs()
        .unwrap();
    for expected in eager {
        assert_eq!(lazy.pop_front().unwrap(), Some(expected));
    }
    assert_eq!(lazy.pop_front().unwrap(), None);
    assert_eq!(
        lazy.raw_heap_bytes(),
        0,
        "the bytes go with the last document"
    );
    // A batch entry that is not a document is refused up front, as before.
    let bad = bson::rawdoc! {"cursor": {"id": 0_i64, "firstBatch": [{"a": 1}, 2]}, "ok": 1};
    let (body, batch) = crate::conn::decode_body(&bad, Some("firstBatch")).unwrap();
    assert!(CursorReply::parse_with(body, "firstBatch", batch).is_err());
}
