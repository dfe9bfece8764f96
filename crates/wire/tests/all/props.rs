//! Property tests: every message kind round-trips, and arbitrary bytes decode to a value or a
//! typed error (never a panic).

use std::borrow::Cow;

use bson::{Document, RawDocumentBuf};
use mongo_wire::{
    Compressor, DeleteFlags, Frame, FrameReader, FrameStatus, InsertFlags, MessageRef, MsgFlags,
    OpDelete, OpGetMore, OpInsert, OpKillCursors, OpMsg, OpMsgRef, OpQuery, OpReply, OpUpdate,
    QueryFlags, ReplyFlags, UpdateFlags, decode_message, encode_compressed, fuzzing,
};
use proptest::prelude::*;

fn doc() -> impl Strategy<Value = RawDocumentBuf> {
    prop::collection::vec(
        (
            "[a-z$]{1,8}",
            prop_oneof![
                any::<i32>().prop_map(bson::Bson::Int32),
                any::<i64>().prop_map(bson::Bson::Int64),
                ".{0,12}".prop_map(bson::Bson::String),
                any::<bool>().prop_map(bson::Bson::Boolean),
            ],
        ),
        0..5,
    )
    .prop_map(|fields| {
        let mut d = Document::new();
        for (k, v) in fields {
            d.insert(k, v);
        }
        RawDocumentBuf::try_from(&d).unwrap()
    })
}

fn docs(max: usize) -> impl Strategy<Value = Vec<RawDocumentBuf>> {
    prop::collection::vec(doc(), 0..max)
}

fn cow_docs(min: usize) -> impl Strategy<Value = Vec<Cow<'static, bson::RawDocument>>> {
    prop::collection::vec(doc().prop_map(Cow::Owned), min..5)
}

fn op_msg() -> impl Strategy<Value = OpMsg> {
    (
        any::<(bool, bool, bool)>(),
        doc(),
        prop::collection::vec(("[a-zA-Z]{0,10}", docs(5)), 0..3),
    )
        .prop_map(|((ck, more, exhaust), body, seqs)| {
            let mut flags = MsgFlags::empty();
            flags.set(MsgFlags::CHECKSUM_PRESENT, ck);
            flags.set(MsgFlags::MORE_TO_COME, more);
            flags.set(MsgFlags::EXHAUST_ALLOWED, exhaust);
            let mut m = OpMsg::new(body).with_flags(flags);
            for (i, (name, docs)) in seqs.into_iter().enumerate() {
                m = m.with_sequence(format!("{name}{i}"), docs);
            }
            m
        })
}

fn ns() -> impl Strategy<Value = Cow<'static, str>> {
    "[a-z]{1,6}\\.[a-z$]{0,6}".prop_map(Cow::Owned)
}

fn roundtrip_frame(bytes: &[u8]) -> Vec<u8> {
    // through the frame reader, in uneven chunks
    let mut r = FrameReader::new(1 << 20);
    let mut out = Vec::new();
    for c in bytes.chunks(7) {
        r.push(c);
        while let FrameStatus::Frame(f) = r.next_frame().unwrap() {
            out.push(f.to_vec());
        }
    }
    assert_eq!(out.len(), 1);
    out.pop().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn op_msg_round_trips(m in op_msg(), rid in any::<i32>(), rto in any::<i32>()) {
        let mut buf = Vec::new();
        m.encode(rid, rto, &mut buf).unwrap();
        prop_assert_eq!(buf.len(), m.encoded_len());
        let frame = roundtrip_frame(&buf);
        let d = decode_message(&frame).unwrap();
        prop_assert_eq!(d.header.request_id, rid);
        prop_assert_eq!(d.header.response_to, rto);
        let MessageRef::Msg(r) = d.message else { panic!("not OP_MSG") };
        prop_assert_eq!(r.checksum.is_some(), m.flags.contains(MsgFlags::CHECKSUM_PRESENT));
        prop_assert_eq!(r.to_owned_msg(), m);
    }

    #[test]
    fn compressed_round_trips(m in op_msg(), which in 0u8..4, level in -1i32..10) {
        let c = match which {
            2 => Compressor::zlib_with_level(level).unwrap(),
            id => Compressor::from_id(id).unwrap(),
        };
        prop_assume!(c.is_enabled());
        let mut plain = Vec::new();
        m.encode(3, 4, &mut plain).unwrap();
        let mut packed = Vec::new();
        encode_compressed(&plain, c, &mut packed).unwrap();
        let f = Frame::new(packed, 1 << 20).unwrap();
        prop_assert_eq!(f.compressor().map(Compressor::id), Some(c.id()));
        prop_assert_eq!(f.as_bytes(), &plain[..]);
        let MessageRef::Msg(r) = f.decode().unwrap().message else { panic!("not OP_MSG") };
        prop_assert_eq!(r.to_owned_msg(), m);
    }

    #[test]
    fn op_query_round_trips(
        flags in any::<u32>(), ns in ns(), skip in any::<i32>(), ret in any::<i32>(),
        query in doc(), proj in prop::option::of(doc()),
    ) {
        let q = OpQuery {
            flags: QueryFlags::from_bits(flags),
            full_collection_name: ns,
            number_to_skip: skip,
            number_to_return: ret,
            query: Cow::Owned(query),
            return_fields_selector: proj.map(Cow::Owned),
        };
        let mut buf = Vec::new();
        q.encode(1, 0, &mut buf).unwrap();
        let frame = roundtrip_frame(&buf);
        let MessageRef::Query(d) = decode_message(&frame).unwrap().message else {
            panic!("not OP_QUERY")
        };
        prop_assert_eq!(d.into_owned(), q);
    }

    #[test]
    fn op_reply_round_trips(
        flags in any::<u32>(), cursor in any::<i64>(), from in any::<i32>(), docs in cow_docs(0),
    ) {
        let r = OpReply {
            flags: ReplyFlags::from_bits(flags),
            cursor_id: cursor,
            starting_from: from,
            documents: docs,
        };
        let mut buf = Vec::new();
        r.encode(1, 0, &mut buf).unwrap();
        prop_assert_eq!(OpReply::decode(&buf).unwrap().into_owned(), r);
    }

    #[test]
    fn legacy_writes_round_trip(
        flags in any::<u32>(), ns in ns(), docs in cow_docs(1), a in doc(), b in doc(),
        n in any::<i32>(), cursor in any::<i64>(), ids in prop::collection::vec(any::<i64>(), 0..6),
    ) {
        let ins = OpInsert {
            flags: InsertFlags::from_bits(flags),
            full_collection_name: ns.clone(),
            documents: docs,
        };
        let upd = OpUpdate {
            full_collection_name: ns.clone(),
            flags: UpdateFlags::from_bits(flags),
            selector: Cow::Owned(a.clone()),
            update: Cow::Owned(b),
        };
        let del = OpDelete {
            full_collection_name: ns.clone(),
            flags: DeleteFlags::from_bits(flags),
            selector: Cow::Owned(a),
        };
        let gm = OpGetMore { full_collection_name: ns, number_to_return: n, cursor_id: cursor };
        let kc = OpKillCursors { cursor_ids: ids };
        let mut buf = Vec::new();
        ins.encode(1, 0, &mut buf).unwrap();
        upd.encode(2, 0, &mut buf).unwrap();
        del.encode(3, 0, &mut buf).unwrap();
        gm.encode(4, 0, &mut buf).unwrap();
        kc.encode(5, 0, &mut buf).unwrap();
        let mut r = FrameReader::default();
        r.push(&buf);
        let mut seen = 0;
        while let FrameStatus::Frame(f) = r.next_frame().unwrap() {
            let d = decode_message(f).unwrap();
            seen += 1;
            prop_assert_eq!(d.header.request_id, seen);
            match d.message {
                MessageRef::Insert(m) => prop_assert_eq!(&m, &ins),
                MessageRef::Update(m) => prop_assert_eq!(&m, &upd),
                MessageRef::Delete(m) => prop_assert_eq!(&m, &del),
                MessageRef::GetMore(m) => prop_assert_eq!(&m, &gm),
                MessageRef::KillCursors(m) => prop_assert_eq!(&m, &kc),
                other => panic!("unexpected {other:?}"),
            }
        }
        prop_assert_eq!(seen, 5);
    }
}

/// Builds a frame with a valid header for `op` around arbitrary body bytes, so the body
/// decoders (not just the header check) see random input.
fn with_header(op: i32, body: &[u8]) -> Vec<u8> {
    let mut out = i32::try_from(16 + body.len())
        .unwrap()
        .to_le_bytes()
        .to_vec();
    out.extend(1_i32.to_le_bytes());
    out.extend(0_i32.to_le_bytes());
    out.extend(op.to_le_bytes());
    out.extend(body);
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_decode_or_fail_typed(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode_message(&bytes);
        let _ = Frame::new(bytes.clone(), 1 << 16);
        fuzzing::frame_reader(&bytes);
    }

    #[test]
    fn any_body_decodes_or_fails_typed(
        op in prop::sample::select(vec![1, 2001, 2002, 2004, 2005, 2006, 2007, 2012, 2013]),
        body in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        let frame = with_header(op, &body);
        let _ = decode_message(&frame);
        let _ = Frame::new(frame.clone(), 1 << 16);
        fuzzing::op_msg(&frame);
        fuzzing::query_reply(&frame);
        fuzzing::legacy(&frame);
        fuzzing::compressed(&frame);
    }

    #[test]
    fn corrupted_op_msg_never_panics(m in op_msg(), pos in any::<prop::sample::Index>(), xor in 1u8..) {
        let mut buf = Vec::new();
        m.encode(1, 0, &mut buf).unwrap();
        let i = pos.index(buf.len());
        buf[i] ^= xor;
        // Either a typed error or a message whose re-encoding decodes identically.
        if let Ok(r) = OpMsgRef::decode(&buf) {
            let mut again = Vec::new();
            r.to_owned_msg().encode(1, 0, &mut again).unwrap();
            let r2 = OpMsgRef::decode(&again).unwrap();
            prop_assert_eq!(r2.body, r.body);
        }
        fuzzing::op_msg(&buf);
    }
}
