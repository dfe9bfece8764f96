//! Entry points shared by the fuzz targets (the top-level `fuzz/` workspace) and the in-crate
//! bounded random-input test. Not a stable API.
//!
//! Each function takes arbitrary bytes and must never panic except on a broken invariant
//! (a value that decodes must re-encode to something that decodes to the same value).

use crate::compress::OpCompressedRef;
use crate::frame::{FrameReader, FrameStatus};
use crate::legacy::{OpDelete, OpGetMore, OpInsert, OpKillCursors, OpQuery, OpReply, OpUpdate};
use crate::message::{Frame, decode_message};
use crate::msg::OpMsgRef;

/// Maximum message size used by the fuzz entry points (keeps allocations small).
pub const FUZZ_MAX_MESSAGE_SIZE: usize = 1 << 20;

/// Feeds `data` to a [`FrameReader`] in chunks whose sizes come from the data, decoding every
/// frame it yields (decompressing OP_COMPRESSED through [`Frame`]).
pub fn frame_reader(data: &[u8]) {
    let Some((&chunk, data)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let mut reader = FrameReader::new(FUZZ_MAX_MESSAGE_SIZE);
    for piece in data.chunks(chunk) {
        reader.push(piece);
        loop {
            match reader.next_frame() {
                Ok(FrameStatus::Frame(frame)) => {
                    let _ = decode_message(frame);
                    if let Ok(f) = Frame::new(frame.to_vec(), FUZZ_MAX_MESSAGE_SIZE) {
                        let _ = f.decode();
                    }
                }
                Ok(FrameStatus::NeedMore(n)) => {
                    assert!(n > 0, "NeedMore(0)");
                    break;
                }
                Err(_) => return,
            }
        }
    }
}

/// Decodes `data` as OP_MSG; on success re-encodes and checks the round trip.
pub fn op_msg(data: &[u8]) {
    let Ok(msg) = OpMsgRef::decode(data) else {
        return;
    };
    let owned = msg.to_owned_msg();
    let mut buf = Vec::new();
    if owned.encode(1, 2, &mut buf).is_ok() {
        let again = OpMsgRef::decode(&buf).expect("re-encoded OP_MSG must decode");
        assert_eq!(again.body.as_bytes(), msg.body.as_bytes());
        assert_eq!(again.sequences.len(), msg.sequences.len());
        for (a, b) in again.sequences.iter().zip(&msg.sequences) {
            assert_eq!(a.identifier, b.identifier);
            assert_eq!(a.as_bytes(), b.as_bytes());
            assert_eq!(a.documents().count(), b.len());
        }
    }
}

/// Decodes `data` as OP_QUERY and as OP_REPLY; re-encodes what decodes.
pub fn query_reply(data: &[u8]) {
    if let Ok(q) = OpQuery::decode(data) {
        let mut buf = Vec::new();
        if q.encode(1, 2, &mut buf).is_ok() {
            assert_eq!(OpQuery::decode(&buf).expect("round trip"), q);
        }
    }
    if let Ok(r) = OpReply::decode(data) {
        let mut buf = Vec::new();
        if r.encode(1, 2, &mut buf).is_ok() {
            assert_eq!(OpReply::decode(&buf).expect("round trip"), r);
        }
    }
}

/// Decodes `data` as each legacy opcode; re-encodes what decodes.
pub fn legacy(data: &[u8]) {
    macro_rules! check {
        ($t:ty) => {
            if let Ok(m) = <$t>::decode(data) {
                let mut buf = Vec::new();
                if m.encode(1, 2, &mut buf).is_ok() {
                    assert_eq!(<$t>::decode(&buf).expect("round trip"), m);
                }
            }
        };
    }
    check!(OpInsert<'_>);
    check!(OpUpdate<'_>);
    check!(OpDelete<'_>);
    check!(OpGetMore<'_>);
    check!(OpKillCursors);
}

/// Decodes `data` as OP_COMPRESSED and decompresses it with a small bound.
pub fn compressed(data: &[u8]) {
    if let Ok(c) = OpCompressedRef::decode(data) {
        let mut out = Vec::new();
        if c.decompress_into(FUZZ_MAX_MESSAGE_SIZE, &mut out).is_ok() {
            assert_eq!(out.len(), c.uncompressed_size + crate::header::HEADER_LEN);
            let _ = decode_message(&out);
        }
    }
}
