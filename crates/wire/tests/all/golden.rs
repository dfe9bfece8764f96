//! Byte-exact encodings worked out by hand from the OP_MSG, OP_COMPRESSED and legacy opcode
//! layouts. `{a: 1}` is `0c000000 10 6100 01000000 00` (12 bytes).

use std::borrow::Cow;

use bson::rawdoc;
use mongo_wire::{
    Compressor, DeleteFlags, FrameReader, FrameStatus, Header, InsertFlags, MessageRef, MsgFlags,
    OpCode, OpDelete, OpGetMore, OpInsert, OpKillCursors, OpMsg, OpMsgRef, OpQuery, OpReply,
    OpUpdate, QueryFlags, ReplyFlags, UpdateFlags, decode_message, encode_compressed,
};

use crate::hex;

const A1: &str = "0c000000 10 6100 01000000 00";
const A2: &str = "0c000000 10 6100 02000000 00";

fn enc(f: impl FnOnce(&mut Vec<u8>) -> mongo_wire::Result<()>) -> Vec<u8> {
    let mut buf = Vec::new();
    f(&mut buf).unwrap();
    buf
}

#[test]
fn header_bytes() {
    let h = Header {
        message_length: 33,
        request_id: 1,
        response_to: -2,
        op_code: OpCode::Msg,
    };
    assert_eq!(
        h.to_bytes().to_vec(),
        hex("21000000 01000000 feffffff dd070000")
    );
    assert_eq!(Header::parse(&h.to_bytes(), 1000).unwrap(), h);
}

#[test]
fn op_msg_body_only() {
    let expected = hex(&format!(
        "21000000 01000000 00000000 dd070000 00000000 00 {A1}"
    ));
    let bytes = enc(|b| OpMsg::new(rawdoc! {"a": 1}).encode(1, 0, b));
    assert_eq!(bytes, expected);
    let m = OpMsgRef::decode(&expected).unwrap();
    assert_eq!(m.body.as_bytes(), hex(A1));
    assert!(m.sequences.is_empty());
    assert_eq!(m.checksum, None);
}

#[test]
fn op_msg_with_sequence() {
    // section kind 1, size 0x1e = 4 + "d\0" + 12 + 12
    let expected = hex(&format!(
        "40000000 05000000 04000000 dd070000 00000000 00 {A1} 01 1e000000 6400 {A1} {A2}"
    ));
    let msg =
        OpMsg::new(rawdoc! {"a": 1}).with_sequence("d", vec![rawdoc! {"a": 1}, rawdoc! {"a": 2}]);
    assert_eq!(enc(|b| msg.encode(5, 4, b)), expected);
    let m = OpMsgRef::decode(&expected).unwrap();
    let seq = m.sequence("d").unwrap();
    assert_eq!(seq.len(), 2);
    let docs: Vec<_> = seq.documents().collect();
    assert_eq!(docs[1].get_i32("a").unwrap(), 2);
    // The documents point into the frame: no copy.
    let frame_range = expected.as_ptr_range();
    assert!(frame_range.contains(&docs[0].as_bytes().as_ptr()));
}

#[test]
fn op_msg_sequence_before_body_decodes() {
    let bytes = hex(&format!(
        "34000000 05000000 04000000 dd070000 00000000 01 12000000 6400 {A2} 00 {A1}"
    ));
    let m = OpMsgRef::decode(&bytes).unwrap();
    assert_eq!(m.body.get_i32("a").unwrap(), 1);
    assert_eq!(m.sequences[0].identifier, "d");
}

#[test]
fn op_msg_checksum() {
    // CRC-32C over the first 33 bytes, computed with a bitwise reference implementation.
    let expected = hex(&format!(
        "25000000 01000000 00000000 dd070000 01000000 00 {A1} 1be4ef6a"
    ));
    let bytes = enc(|b| OpMsg::new(rawdoc! {"a": 1}).with_checksum().encode(1, 0, b));
    assert_eq!(bytes, expected);
    let m = OpMsgRef::decode(&bytes).unwrap();
    assert_eq!(m.checksum, Some(0x6aef_e41b));
    let mut bad = bytes.clone();
    bad[30] ^= 1;
    assert!(matches!(
        OpMsgRef::decode(&bad),
        Err(mongo_wire::Error::ChecksumMismatch {
            expected: 0x6aef_e41b,
            ..
        })
    ));
}

#[test]
fn op_msg_flags() {
    let bytes = enc(|b| {
        OpMsg::new(rawdoc! {"a": 1})
            .with_flags(MsgFlags::MORE_TO_COME | MsgFlags::EXHAUST_ALLOWED)
            .encode(1, 0, b)
    });
    assert_eq!(bytes[16..20], hex("02000100")[..]);
    let m = OpMsgRef::decode(&bytes).unwrap();
    assert!(m.more_to_come());
    assert!(m.flags.contains(MsgFlags::EXHAUST_ALLOWED));
}

fn op_query_bytes() -> Vec<u8> {
    hex(&format!(
        "30000000 02000000 00000000 d4070000 04000000 64622e24636d6400 00000000 ffffffff {A1}"
    ))
}

#[test]
fn op_query() {
    let mut q = OpQuery::command("db", rawdoc! {"a": 1});
    q.flags = QueryFlags::SECONDARY_OK;
    assert_eq!(enc(|b| q.encode(2, 0, b)), op_query_bytes());
    assert_eq!(OpQuery::decode(&op_query_bytes()).unwrap(), q);

    // with a projection
    let mut p = q.clone();
    p.return_fields_selector = Some(Cow::Owned(rawdoc! {"a": 2}));
    let mut expected = op_query_bytes();
    expected.extend(hex(A2));
    expected[0] = 0x3c;
    assert_eq!(enc(|b| p.encode(2, 0, b)), expected);
    assert_eq!(OpQuery::decode(&expected).unwrap(), p);
}

#[test]
fn op_reply() {
    let expected = hex(&format!(
        "30000000 09000000 02000000 01000000 08000000 0807060504030201 00000000 01000000 {A1}"
    ));
    let mut r = OpReply::new(vec![Cow::Owned(rawdoc! {"a": 1})]);
    r.flags = ReplyFlags::AWAIT_CAPABLE;
    r.cursor_id = 0x0102_0304_0506_0708;
    assert_eq!(enc(|b| r.encode(9, 2, b)), expected);
    let d = OpReply::decode(&expected).unwrap();
    assert_eq!(d, r);
    assert!(d.flags.contains(ReplyFlags::AWAIT_CAPABLE));
    assert!(!d.flags.contains(ReplyFlags::QUERY_FAILURE));
}

#[test]
fn op_reply_query_failure_and_cursor_not_found() {
    let bytes = hex(&format!(
        "30000000 09000000 02000000 01000000 03000000 0000000000000000 05000000 01000000 {A1}"
    ));
    let r = OpReply::decode(&bytes).unwrap();
    assert!(
        r.flags
            .contains(ReplyFlags::CURSOR_NOT_FOUND | ReplyFlags::QUERY_FAILURE)
    );
    assert_eq!(r.starting_from, 5);
}

#[test]
fn op_insert() {
    let expected = hex(&format!(
        "25000000 03000000 00000000 d2070000 01000000 64622e6300 {A1}"
    ));
    let m = OpInsert {
        flags: InsertFlags::CONTINUE_ON_ERROR,
        full_collection_name: "db.c".into(),
        documents: vec![Cow::Owned(rawdoc! {"a": 1})],
    };
    assert_eq!(enc(|b| m.encode(3, 0, b)), expected);
    assert_eq!(OpInsert::decode(&expected).unwrap(), m);
}

#[test]
fn op_update() {
    let expected = hex(&format!(
        "35000000 03000000 00000000 d1070000 00000000 64622e6300 03000000 {A1} {A2}"
    ));
    let m = OpUpdate {
        full_collection_name: "db.c".into(),
        flags: UpdateFlags::UPSERT | UpdateFlags::MULTI_UPDATE,
        selector: Cow::Owned(rawdoc! {"a": 1}),
        update: Cow::Owned(rawdoc! {"a": 2}),
    };
    assert_eq!(enc(|b| m.encode(3, 0, b)), expected);
    assert_eq!(OpUpdate::decode(&expected).unwrap(), m);
}

#[test]
fn op_delete() {
    let expected = hex(&format!(
        "29000000 03000000 00000000 d6070000 00000000 64622e6300 01000000 {A1}"
    ));
    let m = OpDelete {
        full_collection_name: "db.c".into(),
        flags: DeleteFlags::SINGLE_REMOVE,
        selector: Cow::Owned(rawdoc! {"a": 1}),
    };
    assert_eq!(enc(|b| m.encode(3, 0, b)), expected);
    assert_eq!(OpDelete::decode(&expected).unwrap(), m);
}

#[test]
fn op_get_more() {
    let expected =
        hex("25000000 03000000 00000000 d5070000 00000000 64622e6300 02000000 0500000000000000");
    let m = OpGetMore {
        full_collection_name: "db.c".into(),
        number_to_return: 2,
        cursor_id: 5,
    };
    assert_eq!(enc(|b| m.encode(3, 0, b)), expected);
    assert_eq!(OpGetMore::decode(&expected).unwrap(), m);
}

#[test]
fn op_kill_cursors() {
    let expected = hex(
        "28000000 03000000 00000000 d7070000 00000000 02000000 0500000000000000 0600000000000000",
    );
    let m = OpKillCursors {
        cursor_ids: vec![5, 6],
    };
    assert_eq!(enc(|b| m.encode(3, 0, b)), expected);
    assert_eq!(OpKillCursors::decode(&expected).unwrap(), m);
}

/// The OP_MSG `{a: 1}` above without its header: 17 bytes.
const MSG_BODY: &str = "00000000 00 0c000000 10 6100 01000000 00";

fn compressed_frame(id: &str, payload: &str) -> Vec<u8> {
    let payload = hex(payload);
    let mut out = Vec::new();
    let len = i32::try_from(16 + 9 + payload.len()).unwrap();
    out.extend(len.to_le_bytes());
    out.extend(hex(&format!(
        "07000000 03000000 dc070000 dd070000 11000000 {id}"
    )));
    out.extend(payload);
    out
}

fn check_inflates_to_op_msg(frame: Vec<u8>, compressor: Compressor) {
    let f = mongo_wire::Frame::new(frame, 1000).unwrap();
    assert_eq!(f.compressor(), Some(compressor));
    assert_eq!(
        f.as_bytes(),
        hex(&format!("21000000 07000000 03000000 dd070000 {MSG_BODY}"))
    );
    let MessageRef::Msg(m) = f.decode().unwrap().message else {
        panic!("not OP_MSG")
    };
    assert_eq!(m.body.get_i32("a").unwrap(), 1);
}

#[test]
fn op_compressed_noop() {
    let plain = enc(|b| OpMsg::new(rawdoc! {"a": 1}).encode(7, 3, b));
    let expected = compressed_frame("00", MSG_BODY);
    assert_eq!(expected[0], 0x2a);
    assert_eq!(
        enc(|b| encode_compressed(&plain, Compressor::Noop, b)),
        expected
    );
    check_inflates_to_op_msg(expected, Compressor::Noop);
}

#[cfg(feature = "snappy")]
#[test]
fn op_compressed_snappy_literal() {
    // snappy: varint length 17, then one literal element with tag (17-1) << 2 = 0x40.
    let frame = compressed_frame("01", &format!("11 40 {MSG_BODY}"));
    check_inflates_to_op_msg(frame, Compressor::Snappy);
}

#[cfg(feature = "zlib")]
#[test]
fn op_compressed_zlib_stored_block() {
    // zlib header 78 01, one final stored block (LEN 0x11, NLEN), Adler-32 big-endian.
    let frame = compressed_frame("02", &format!("7801 01 1100 eeff {MSG_BODY} 03cd007f"));
    check_inflates_to_op_msg(frame, Compressor::ZLIB);
}

#[cfg(feature = "zstd")]
#[test]
fn op_compressed_zstd_raw_block() {
    // zstd magic, descriptor 0x20 (single segment, 1-byte content size 0x11), last raw block
    // of 17 bytes: (17 << 3) | 1 = 0x89.
    let frame = compressed_frame("03", &format!("28b52ffd 20 11 890000 {MSG_BODY}"));
    check_inflates_to_op_msg(frame, Compressor::Zstd);
}

#[test]
fn legacy_insert_then_get_last_error_in_one_buffer() {
    let insert = OpInsert {
        flags: InsertFlags::empty(),
        full_collection_name: "db.c".into(),
        documents: vec![Cow::Owned(rawdoc! {"a": 1})],
    };
    let gle = OpQuery::get_last_error("db", None);
    let mut buf = Vec::new();
    insert.encode(10, 0, &mut buf).unwrap();
    gle.encode(11, 0, &mut buf).unwrap();
    // {getlasterror: 1} is 0x17 bytes; the query is 16 + 4 + 8 + 4 + 4 + 23 = 0x3b bytes.
    let expected = hex(&format!(
        "25000000 0a000000 00000000 d2070000 00000000 64622e6300 {A1}
         3b000000 0b000000 00000000 d4070000 00000000 64622e24636d6400 00000000 ffffffff
         17000000 10 6765746c6173746572726f7200 01000000 00"
    ));
    assert_eq!(buf, expected);

    let mut reader = FrameReader::default();
    let mut frames = Vec::new();
    for chunk in buf.chunks(3) {
        reader.push(chunk);
        while let FrameStatus::Frame(f) = reader.next_frame().unwrap() {
            frames.push(f.to_vec());
        }
    }
    assert_eq!(frames.len(), 2);
    let first = decode_message(&frames[0]).unwrap();
    assert_eq!(first.header.request_id, 10);
    assert!(matches!(first.message, MessageRef::Insert(ref i) if i.documents.len() == 1));
    let second = decode_message(&frames[1]).unwrap();
    let MessageRef::Query(q) = second.message else {
        panic!("expected OP_QUERY")
    };
    assert_eq!(q.full_collection_name, "db.$cmd");
    assert_eq!(q.number_to_return, -1);
    assert_eq!(q.query.get_i32("getlasterror").unwrap(), 1);
    assert_eq!(reader.buffered(), 0);
}

#[test]
fn get_last_error_with_write_concern() {
    let q = OpQuery::get_last_error("db", Some(&rawdoc! {"w": 2, "j": true}));
    let keys: Vec<_> = q
        .query
        .iter()
        .map(|e| e.unwrap().0.as_str().to_owned())
        .collect();
    assert_eq!(keys, ["getlasterror", "w", "j"]);
}
