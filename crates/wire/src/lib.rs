//! The MongoDB wire protocol: message header, OP_MSG, OP_QUERY / OP_REPLY, the legacy write
//! opcodes, OP_COMPRESSED and an incremental frame reader.
//!
//! This crate turns messages into bytes and bytes into messages. It opens no sockets and,
//! unless the `tokio` feature is on, does no I/O at all; the connection (`mongo-client`) and the
//! test server (`mongo-testkit`) drive it. Bytes from the network are untrusted: every decoder
//! returns a typed [`Error`] instead of panicking, lengths are checked before anything is
//! allocated, and decompression is bounded by the declared size.
//!
//! # Map
//!
//! | Piece | Types |
//! |---|---|
//! | header | [`Header`] `{ message_length, request_id, response_to, op_code }`, [`OpCode`], [`HEADER_LEN`] |
//! | OP_MSG | owned [`OpMsg`] for building (`OpMsg::new(body).with_sequence("documents", docs)`), borrowed [`OpMsgRef`] for decoding (sequences are [`DocumentSequenceRef`]s whose documents borrow the frame), [`MsgFlags`], checksum via [`MsgFlags::CHECKSUM_PRESENT`] |
//! | batching | [`SizeLimits`] (defaults in [`limits`], or [`SizeLimits::from_hello`]), [`OpMsg::split_batch`], [`batch_ranges`] |
//! | legacy | [`OpQuery`], [`OpReply`], [`OpInsert`], [`OpUpdate`], [`OpDelete`], [`OpGetMore`], [`OpKillCursors`] (one type each, `Cow` fields: borrowed when decoded, `into_owned()` to keep) |
//! | compression | [`Compressor`] (ids 0-3, names, `FromStr`), [`is_compressible`], [`encode_compressed`], [`OpCompressedRef`]; codecs behind the `snappy`, `zlib`, `zstd` features |
//! | dispatch | [`decode_message`] → [`Decoded`] `{ header, message: MessageRef }`; [`Frame`] owns bytes and decompresses OP_COMPRESSED transparently; [`Encode`] + [`encode_message`] compress when allowed |
//! | framing | [`FrameReader`] (push bytes, get [`FrameStatus::NeedMore`] or a whole frame) |
//! | async (feature `tokio`) | `MessageReader::read_message`, `MessageWriter::write_message` |
//!
//! # Example
//!
//! ```
//! use bson::rawdoc;
//! use mongo_wire::{FrameReader, FrameStatus, MessageRef, OpMsg, decode_message};
//!
//! // Build and encode an insert with its documents in a kind-1 sequence.
//! let msg = OpMsg::new(rawdoc! { "insert": "coll", "$db": "test" })
//!     .with_sequence("documents", vec![rawdoc! { "_id": 1 }, rawdoc! { "_id": 2 }]);
//! let mut bytes = Vec::new();
//! msg.encode(7, 0, &mut bytes)?;
//!
//! // Frame the byte stream (here: all at once) and decode without copying documents.
//! let mut reader = FrameReader::default();
//! reader.push(&bytes);
//! let FrameStatus::Frame(frame) = reader.next_frame()? else { unreachable!() };
//! let decoded = decode_message(frame)?;
//! assert_eq!(decoded.header.request_id, 7);
//! let MessageRef::Msg(op) = decoded.message else { unreachable!() };
//! assert_eq!(op.command_name(), Some("insert"));
//! assert_eq!(op.sequence("documents").map(|s| s.len()), Some(2));
//! # Ok::<(), mongo_wire::Error>(())
//! ```
//!
//! # Design notes
//!
//! Encoding appends to a caller-owned `Vec<u8>` so connections reuse one buffer; decoding
//! borrows from the frame so a 1,000-document batch is validated (length prefixes and
//! terminators) but never copied. Element contents are validated lazily by `bson` when read.
//! OP_MSG flag bits 0-15 that this crate does not know are rejected, bits 16-31 are ignored, as
//! the OP_MSG spec requires.

mod codec;
mod compress;
mod error;
mod frame;
mod header;
#[cfg(feature = "tokio")]
mod io;
mod legacy;
pub mod limits;
mod message;
mod msg;

#[cfg(feature = "__fuzzing")]
pub mod fuzzing;

pub use compress::{
    Compressor, OpCompressedRef, UNCOMPRESSIBLE_COMMANDS, encode_compressed, is_compressible,
};
pub use error::{Error, LengthProblem, Result};
pub use frame::{FrameReader, FrameStatus};
pub use header::{HEADER_LEN, Header, OpCode};
#[cfg(feature = "tokio")]
pub use io::{MessageReader, MessageWriter};
pub use legacy::{
    DeleteFlags, InsertFlags, OpDelete, OpGetMore, OpInsert, OpKillCursors, OpQuery, OpReply,
    OpUpdate, QueryFlags, ReplyFlags, UpdateFlags,
};
pub use limits::SizeLimits;
pub use message::{Decoded, Encode, Frame, MessageRef, decode_message, encode_message};
pub use msg::{
    DocumentIter, DocumentSequence, DocumentSequenceRef, MsgFlags, OpMsg, OpMsgRef, batch_ranges,
};
