//! Typed errors on bad input, compressor naming, size limits and batch splitting.

use bson::{RawDocumentBuf, rawdoc};
use mongo_wire::{
    Compressor, Error, FrameReader, FrameStatus, LengthProblem, MsgFlags, OpCode, OpMsg, OpMsgRef,
    SizeLimits, batch_ranges, decode_message, is_compressible, limits,
};

use crate::hex;

const A1: &str = "0c000000 10 6100 01000000 00";

#[test]
fn unknown_opcode_is_typed() {
    // OP_COMMAND (2010) is not supported.
    let bytes = hex(&format!(
        "21000000 01000000 00000000 da070000 00000000 00 {A1}"
    ));
    assert!(matches!(
        decode_message(&bytes),
        Err(Error::UnknownOpCode(2010))
    ));
    assert!(matches!(OpCode::from_i32(3), Err(Error::UnknownOpCode(3))));
    assert_eq!(OpCode::try_from(2013).unwrap(), OpCode::Msg);
    assert_eq!(i32::from(OpCode::Reply), 1);
}

#[test]
fn frame_reader_rejects_negative_length_after_four_bytes() {
    let mut r = FrameReader::new(1000);
    r.push(&hex("ffffffff"));
    assert!(matches!(
        r.next_frame(),
        Err(Error::InvalidLength {
            length: -1,
            reason: LengthProblem::Negative
        })
    ));
}

#[test]
fn frame_reader_rejects_over_max_before_buffering_body() {
    let mut r = FrameReader::new(1000);
    r.push(&1001_i32.to_le_bytes());
    assert!(matches!(
        r.next_frame(),
        Err(Error::InvalidLength {
            reason: LengthProblem::TooLarge { max: 1000 },
            ..
        })
    ));
    let mut r = FrameReader::new(limits::DEFAULT_MAX_MESSAGE_SIZE_BYTES);
    r.push(&i32::MAX.to_le_bytes());
    assert!(r.next_frame().is_err());
}

#[test]
fn frame_reader_rejects_lengths_too_small_for_opcode() {
    let mut r = FrameReader::new(1000);
    r.push(&hex("0a000000"));
    assert!(matches!(
        r.next_frame(),
        Err(Error::InvalidLength {
            reason: LengthProblem::TooSmall { op_code: None, .. },
            ..
        })
    ));
    // 20 bytes claimed for OP_MSG, whose minimum is 26.
    let mut r = FrameReader::new(1000);
    r.push(&hex("14000000 01000000 00000000 dd070000"));
    assert!(matches!(
        r.next_frame(),
        Err(Error::InvalidLength {
            reason: LengthProblem::TooSmall {
                op_code: Some(OpCode::Msg),
                minimum: 26
            },
            ..
        })
    ));
    // OP_REPLY minimum is 36.
    let mut r = FrameReader::new(1000);
    r.push(&hex("23000000 01000000 00000000 01000000"));
    assert!(r.next_frame().is_err());
}

#[test]
fn frame_reader_reports_missing_bytes() {
    let mut r = FrameReader::new(1000);
    assert_eq!(r.next_frame().unwrap(), FrameStatus::NeedMore(16));
    r.push(&hex("21000000 01"));
    assert_eq!(r.next_frame().unwrap(), FrameStatus::NeedMore(11));
    r.push(&hex("000000 00000000 dd070000"));
    assert_eq!(r.next_frame().unwrap(), FrameStatus::NeedMore(17));
    r.push(&hex(&format!("00000000 00 {A1}")));
    let FrameStatus::Frame(f) = r.next_frame().unwrap() else {
        panic!("expected a frame")
    };
    assert_eq!(f.len(), 33);
    assert_eq!(r.next_frame().unwrap(), FrameStatus::NeedMore(16));
}

fn msg_with(flags: &str, sections: &str) -> Vec<u8> {
    let body = hex(&format!("{flags} {sections}"));
    let mut out = i32::try_from(16 + body.len())
        .unwrap()
        .to_le_bytes()
        .to_vec();
    out.extend(hex("01000000 00000000 dd070000"));
    out.extend(body);
    out
}

#[test]
fn op_msg_required_and_optional_bits() {
    // bit 2 is an unknown required bit
    let bad = msg_with("04000000", &format!("00 {A1}"));
    assert!(matches!(
        OpMsgRef::decode(&bad),
        Err(Error::UnknownRequiredFlags(4))
    ));
    let bad = msg_with("00800000", &format!("00 {A1}"));
    assert!(matches!(
        OpMsgRef::decode(&bad),
        Err(Error::UnknownRequiredFlags(0x8000))
    ));
    // bit 20 is optional and ignored (but kept)
    let ok = msg_with("00001000", &format!("00 {A1}"));
    let m = OpMsgRef::decode(&ok).unwrap();
    assert_eq!(m.flags.bits(), 1 << 20);
    assert!(!m.flags.contains(MsgFlags::CHECKSUM_PRESENT));
}

#[test]
fn op_msg_section_errors() {
    let seq = format!("01 12000000 6400 {A1}");
    assert!(matches!(
        OpMsgRef::decode(&msg_with("00000000", &seq)),
        Err(Error::MissingBody)
    ));
    let two = format!("00 {A1} 00 {A1}");
    assert!(matches!(
        OpMsgRef::decode(&msg_with("00000000", &two)),
        Err(Error::DuplicateBody)
    ));
    let dup = format!("00 {A1} {seq} {seq}");
    assert!(matches!(
        OpMsgRef::decode(&msg_with("00000000", &dup)),
        Err(Error::DuplicateSequence(ref s)) if s == "d"
    ));
    let kind2 = format!("00 {A1} 02 {A1}");
    assert!(matches!(
        OpMsgRef::decode(&msg_with("00000000", &kind2)),
        Err(Error::UnknownSectionKind(2))
    ));
    // sequence size smaller than its own size field
    let tiny = format!("00 {A1} 01 02000000");
    assert!(OpMsgRef::decode(&msg_with("00000000", &tiny)).is_err());
    // sequence whose document overruns the declared size
    let over = format!("00 {A1} 01 0a000000 6400 {A1}");
    assert!(OpMsgRef::decode(&msg_with("00000000", &over)).is_err());
    // checksum flag without room for a checksum
    assert!(OpMsgRef::decode(&msg_with("01000000", "00")).is_err());
    // identifiers with NUL can't be encoded
    let m = OpMsg::new(rawdoc! {}).with_sequence("a\0b", vec![]);
    let mut buf = vec![9];
    assert!(matches!(
        m.encode(1, 0, &mut buf),
        Err(Error::InteriorNul(_))
    ));
    assert_eq!(buf, [9], "nothing appended on error");
}

/// A peer can send a huge number of tiny kind-1 sections: the duplicate-identifier check must
/// stay linear (this frame took a quadratic scan of 5e9 comparisons before).
#[test]
fn op_msg_many_sequences_decode_and_duplicates_are_found() {
    const N: usize = 100_000;
    let mut sections = format!("00 {A1}");
    for i in 0..N {
        // kind 1, size 4 + 7, identifier "%06x\0", no documents
        let ident: String = format!("{i:06x}")
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect();
        sections.push_str(&format!(" 01 0b000000 {ident}00"));
    }
    let frame = msg_with("00000000", &sections);
    let m = OpMsgRef::decode(&frame).unwrap();
    assert_eq!(m.sequences.len(), N);
    assert_eq!(m.sequences[N - 1].identifier, format!("{:06x}", N - 1));
    assert!(m.sequences.iter().all(|s| s.is_empty()));

    // the same frame plus a repeat of the first identifier
    sections.push_str(" 01 0b000000 30303030303000");
    assert!(matches!(
        OpMsgRef::decode(&msg_with("00000000", &sections)),
        Err(Error::DuplicateSequence(ref s)) if s == "000000"
    ));
}

#[test]
fn decode_rejects_frame_length_mismatch() {
    let mut bytes = hex(&format!(
        "21000000 01000000 00000000 dd070000 00000000 00 {A1}"
    ));
    bytes.push(0);
    assert!(matches!(
        decode_message(&bytes),
        Err(Error::LengthMismatch {
            declared: 33,
            actual: 34
        })
    ));
}

#[test]
fn legacy_count_errors() {
    // OP_REPLY claiming 1000 documents with one present
    let bytes = hex(&format!(
        "30000000 09000000 02000000 01000000 00000000 0000000000000000 00000000 e8030000 {A1}"
    ));
    assert!(matches!(
        decode_message(&bytes),
        Err(Error::InvalidCount {
            field: "numberReturned",
            value: 1000
        })
    ));
    // OP_KILL_CURSORS claiming -1 ids
    let bytes = hex("20000000 03000000 00000000 d7070000 00000000 ffffffff 0500000000000000");
    assert!(matches!(
        decode_message(&bytes),
        Err(Error::InvalidCount { value: -1, .. })
    ));
}

#[test]
fn compressor_ids_and_names() {
    for (id, name) in [(0, "noop"), (1, "snappy"), (2, "zlib"), (3, "zstd")] {
        let c = Compressor::from_id(id).unwrap();
        assert_eq!(c.id(), id);
        assert_eq!(c.name(), name);
        assert_eq!(name.parse::<Compressor>().unwrap().id(), id);
        assert_eq!(c.to_string(), name);
    }
    assert_eq!("ZLIB".parse::<Compressor>().unwrap(), Compressor::ZLIB);
    assert!(matches!(
        "snoopy".parse::<Compressor>(),
        Err(Error::UnknownCompressorName(_))
    ));
    assert!(matches!(
        Compressor::from_id(4),
        Err(Error::UnknownCompressorId(4))
    ));
    assert_eq!(
        Compressor::zlib_with_level(9).unwrap(),
        Compressor::Zlib { level: Some(9) }
    );
    assert_eq!(Compressor::zlib_with_level(-1).unwrap(), Compressor::ZLIB);
    assert!(matches!(
        Compressor::zlib_with_level(10),
        Err(Error::InvalidZlibLevel(10))
    ));
    assert!(Compressor::Noop.is_enabled());
    assert_eq!(Compressor::Zstd.is_enabled(), cfg!(feature = "zstd"));
}

#[test]
fn never_compressed_commands() {
    for c in [
        "hello",
        "isMaster",
        "ismaster",
        "ISMASTER",
        "saslStart",
        "saslContinue",
        "getnonce",
        "authenticate",
        "createUser",
        "updateUser",
        "copydbSaslStart",
        "copydbgetnonce",
        "copydb",
    ] {
        assert!(!is_compressible(c), "{c}");
    }
    for c in ["find", "insert", "ping", "helloWorld"] {
        assert!(is_compressible(c), "{c}");
    }
}

fn compressed(original: &str, size: &str, id: &str, payload: &str) -> Vec<u8> {
    let payload = hex(payload);
    let mut out = i32::try_from(25 + payload.len())
        .unwrap()
        .to_le_bytes()
        .to_vec();
    out.extend(hex(&format!(
        "01000000 00000000 dc070000 {original} {size} {id}"
    )));
    out.extend(payload);
    out
}

#[test]
fn op_compressed_size_checks() {
    let body = format!("00000000 00 {A1}");
    // declared size over the max: refused before allocating
    let huge = compressed("dd070000", "ffffff7f", "00", &body);
    assert!(matches!(
        mongo_wire::Frame::new(huge, 1000),
        Err(Error::UncompressedSizeTooLarge {
            declared: 0x7fff_ffff,
            max: 984
        })
    ));
    // negative declared size
    let neg = compressed("dd070000", "ffffffff", "00", &body);
    assert!(decode_message(&neg).is_err());
    // declared 18, real 17
    let short = compressed("dd070000", "12000000", "00", &body);
    assert!(matches!(
        mongo_wire::Frame::new(short, 1000),
        Err(Error::DecompressedSizeMismatch { declared: 18 })
    ));
    // nested OP_COMPRESSED
    let nested = compressed("dc070000", "11000000", "00", &body);
    assert!(matches!(
        decode_message(&nested),
        Err(Error::NestedCompression)
    ));
    // unknown compressor id
    let unknown = compressed("dd070000", "11000000", "09", &body);
    assert!(matches!(
        decode_message(&unknown),
        Err(Error::UnknownCompressorId(9))
    ));
    // declared size below the wrapped opcode's minimum
    let small = compressed("dd070000", "02000000", "00", "0000");
    assert!(matches!(
        decode_message(&small),
        Err(Error::InvalidLength { .. })
    ));
}

/// A payload that expands far beyond its declared size must be refused, for every enabled
/// compressor, without producing more than the declared bytes.
#[test]
fn decompression_bombs_are_bounded() {
    let big = vec![0u8; 1 << 20];
    for c in [Compressor::Snappy, Compressor::ZLIB, Compressor::Zstd] {
        if !c.is_enabled() {
            let mut out = Vec::new();
            assert!(matches!(
                c.compress(&big, &mut out),
                Err(Error::CompressorNotEnabled(_))
            ));
            continue;
        }
        let mut packed = Vec::new();
        c.compress(&big, &mut packed).unwrap();
        assert!(packed.len() < big.len() / 10, "{c}");
        let mut out = vec![7u8];
        let err = c.decompress(&packed, 1000, &mut out).unwrap_err();
        assert!(
            matches!(
                err,
                Error::DecompressedSizeMismatch { .. } | Error::Decompression { .. }
            ),
            "{c}: {err}"
        );
        assert_eq!(out, [7], "{c}: output left untouched");
        // declared larger than real
        let mut out = Vec::new();
        assert!(
            c.decompress(&packed, big.len() + 1, &mut out).is_err(),
            "{c}"
        );
        // exact
        let mut out = Vec::new();
        c.decompress(&packed, big.len(), &mut out).unwrap();
        assert_eq!(out, big);
        // garbage
        assert!(c.decompress(&hex("deadbeef"), 10, &mut Vec::new()).is_err());
    }
}

#[test]
fn size_limits_from_hello() {
    let hello = rawdoc! {
        "maxBsonObjectSize": 1000,
        "maxMessageSizeBytes": 5000_i64,
        "maxWriteBatchSize": 10.0,
    };
    let l = SizeLimits::from_hello(&hello);
    assert_eq!(
        l,
        SizeLimits {
            max_bson_object_size: 1000,
            max_message_size_bytes: 5000,
            max_write_batch_size: 10
        }
    );
    let l = SizeLimits::from_hello(&rawdoc! {"maxBsonObjectSize": -4, "maxWriteBatchSize": "x"});
    assert_eq!(l, SizeLimits::default());
    assert_eq!(l.max_bson_object_size, 16 * 1024 * 1024);
    assert_eq!(l.max_message_size_bytes, 48_000_000);
    assert_eq!(l.max_write_batch_size, 100_000);
}

fn doc_of_size(n: usize) -> RawDocumentBuf {
    // {s: "<n - 12 x's>"}: 4 + (1 + 2 + 4 + len + 1) + 1 = len + 13
    let s = "x".repeat(n - 13);
    let d = rawdoc! {"s": s};
    assert_eq!(d.as_bytes().len(), n);
    d
}

#[test]
fn split_batch_respects_all_three_limits() {
    let limits = SizeLimits {
        max_bson_object_size: 100,
        max_message_size_bytes: 300,
        max_write_batch_size: 4,
    };
    let body = rawdoc! {"insert": "c", "$db": "d"};
    let docs: Vec<_> = (0..11).map(|_| doc_of_size(60)).collect();
    let msgs =
        OpMsg::split_batch(&body, "documents", docs.clone(), MsgFlags::empty(), &limits).unwrap();
    // body is 30 bytes; overhead 16 + 4 + 1 + 30 + 1 + 4 + 10 = 66; 66 + 3 * 60 fits, + 4 * 60 not
    assert_eq!(
        msgs.iter()
            .map(|m| m.sequences[0].documents.len())
            .collect::<Vec<_>>(),
        [3, 3, 3, 2]
    );
    for m in &msgs {
        let mut buf = Vec::new();
        m.encode(1, 0, &mut buf).unwrap();
        assert!(buf.len() <= 300);
        assert_eq!(buf.len(), m.encoded_len());
    }
    // count limit binds with small documents
    let small: Vec<_> = (0..9).map(|_| doc_of_size(20)).collect();
    let ranges = batch_ranges(34, "documents", &small, false, &limits).unwrap();
    assert_eq!(ranges, [0..4, 4..8, 8..9]);
    // a document over maxBsonObjectSize
    let mut big = small.clone();
    big.insert(2, doc_of_size(101));
    assert!(matches!(
        batch_ranges(34, "documents", &big, false, &limits),
        Err(Error::DocumentTooLarge {
            index: 2,
            size: 101,
            max: 100
        })
    ));
    // the body may use the 16 KiB command overhead, no more
    let l = SizeLimits::default();
    let ok = limits::DEFAULT_MAX_BSON_OBJECT_SIZE + 16 * 1024;
    assert!(batch_ranges(ok, "documents", &small, false, &l).is_ok());
    assert!(batch_ranges(ok + 1, "documents", &small, false, &l).is_err());
    // nothing to split
    assert!(
        batch_ranges::<RawDocumentBuf>(34, "d", &[], false, &l)
            .unwrap()
            .is_empty()
    );
}
