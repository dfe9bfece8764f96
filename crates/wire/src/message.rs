//! Dispatch over all opcodes: [`decode_message`], [`MessageRef`], the owning [`Frame`] that
//! decompresses OP_COMPRESSED transparently, and the [`Encode`] trait with [`encode_message`].

use crate::codec::body_of;
use crate::compress::{Compressor, OpCompressedRef, encode_compressed, is_compressible};
use crate::error::{Error, Result};
use crate::header::{Header, OpCode};
use crate::legacy::{OpDelete, OpGetMore, OpInsert, OpKillCursors, OpQuery, OpReply, OpUpdate};
use crate::msg::{OpMsg, OpMsgRef};

/// A decoded message of any opcode, borrowing its frame.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum MessageRef<'a> {
    /// OP_MSG.
    Msg(OpMsgRef<'a>),
    /// OP_QUERY.
    Query(OpQuery<'a>),
    /// OP_REPLY.
    Reply(OpReply<'a>),
    /// OP_INSERT.
    Insert(OpInsert<'a>),
    /// OP_UPDATE.
    Update(OpUpdate<'a>),
    /// OP_DELETE.
    Delete(OpDelete<'a>),
    /// OP_GET_MORE.
    GetMore(OpGetMore<'a>),
    /// OP_KILL_CURSORS.
    KillCursors(OpKillCursors),
    /// OP_COMPRESSED, not yet decompressed (only from [`decode_message`]; a [`Frame`] never
    /// yields it).
    Compressed(OpCompressedRef<'a>),
}

/// A header and the message it introduces.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded<'a> {
    /// The message header.
    pub header: Header,
    /// The message.
    pub message: MessageRef<'a>,
}

/// Decodes one whole frame (exactly `messageLength` bytes, header included) without copying.
///
/// OP_COMPRESSED is returned as [`MessageRef::Compressed`]; use [`Frame`] (or
/// [`OpCompressedRef::decompress_into`]) to decompress. The maximum message size is not checked
/// here: the [`crate::FrameReader`] enforces it while framing.
///
/// # Errors
/// Any decoding error for the opcode.
pub fn decode_message(frame: &[u8]) -> Result<Decoded<'_>> {
    let header = Header::parse(frame, usize::MAX)?;
    let body = body_of(frame, &header)?;
    let message = match header.op_code {
        OpCode::Msg => MessageRef::Msg(OpMsgRef::decode_frame(frame)?),
        OpCode::Query => MessageRef::Query(OpQuery::decode_body(body)?),
        OpCode::Reply => MessageRef::Reply(OpReply::decode_body(body)?),
        OpCode::Insert => MessageRef::Insert(OpInsert::decode_body(body)?),
        OpCode::Update => MessageRef::Update(OpUpdate::decode_body(body)?),
        OpCode::Delete => MessageRef::Delete(OpDelete::decode_body(body)?),
        OpCode::GetMore => MessageRef::GetMore(OpGetMore::decode_body(body)?),
        OpCode::KillCursors => MessageRef::KillCursors(OpKillCursors::decode_body(body)?),
        OpCode::Compressed => MessageRef::Compressed(OpCompressedRef::decode(frame)?),
    };
    Ok(Decoded { header, message })
}

/// One whole message that owns its bytes, already decompressed when it arrived as
/// OP_COMPRESSED. [`Frame::decode`] then borrows from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    bytes: Vec<u8>,
    header: Header,
    compressor: Option<Compressor>,
}

impl Frame {
    /// Takes one whole frame, validates its header against `max_message_size` and, for
    /// OP_COMPRESSED, decompresses it (bounded by `max_message_size`).
    ///
    /// # Errors
    /// Header, length and decompression errors.
    pub fn new(bytes: Vec<u8>, max_message_size: usize) -> Result<Self> {
        let header = Header::parse(&bytes, max_message_size)?;
        body_of(&bytes, &header)?;
        if header.op_code != OpCode::Compressed {
            return Ok(Self {
                bytes,
                header,
                compressor: None,
            });
        }
        let compressed = OpCompressedRef::decode(&bytes)?;
        let mut out = Vec::new();
        compressed.decompress_into(max_message_size, &mut out)?;
        let header = Header::parse(&out, max_message_size)?;
        Ok(Self {
            header,
            compressor: Some(compressed.compressor),
            bytes: out,
        })
    }

    /// The header of the (decompressed) message.
    #[must_use]
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The compressor the message arrived with, if it was OP_COMPRESSED.
    #[must_use]
    pub fn compressor(&self) -> Option<Compressor> {
        self.compressor
    }

    /// The (decompressed) message bytes, header included.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Gives the bytes back.
    #[must_use]
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// Decodes the message, borrowing from the frame.
    ///
    /// # Errors
    /// Any decoding error for the opcode.
    pub fn decode(&self) -> Result<Decoded<'_>> {
        decode_message(&self.bytes)
    }
}

/// A message that can be encoded: implemented by every owned or borrowed message type.
pub trait Encode {
    /// Appends the whole message, header included, to `buf`.
    ///
    /// # Errors
    /// Encoding errors (NUL in a name, message over `i32::MAX`, ...).
    fn encode(&self, request_id: i32, response_to: i32, buf: &mut Vec<u8>) -> Result<()>;

    /// The command the message carries, if it is a command (decides compressibility).
    fn command_name(&self) -> Option<&str> {
        None
    }
}

impl Encode for OpMsg {
    fn encode(&self, request_id: i32, response_to: i32, buf: &mut Vec<u8>) -> Result<()> {
        Self::encode(self, request_id, response_to, buf)
    }

    fn command_name(&self) -> Option<&str> {
        Self::command_name(self)
    }
}

impl Encode for OpQuery<'_> {
    fn encode(&self, request_id: i32, response_to: i32, buf: &mut Vec<u8>) -> Result<()> {
        Self::encode(self, request_id, response_to, buf)
    }

    fn command_name(&self) -> Option<&str> {
        if !self.full_collection_name.ends_with(".$cmd") {
            return None;
        }
        self.query
            .iter_elements()
            .next()
            .and_then(|e| e.ok())
            .map(|e| e.key().as_str())
    }
}

macro_rules! impl_encode {
    ($($t:ty),*) => {$(
        impl Encode for $t {
            fn encode(&self, request_id: i32, response_to: i32, buf: &mut Vec<u8>) -> Result<()> {
                <$t>::encode(self, request_id, response_to, buf)
            }
        }
    )*};
}
impl_encode!(
    OpReply<'_>,
    OpInsert<'_>,
    OpUpdate<'_>,
    OpDelete<'_>,
    OpGetMore<'_>,
    OpKillCursors
);

/// Encodes `message` into `buf` (appending), wrapped in OP_COMPRESSED with `compressor` when
/// one is given and the message's command may be compressed ([`is_compressible`]); otherwise
/// plain. `scratch` is a reusable buffer for the uncompressed encoding.
///
/// # Errors
/// Encoding or compression errors; nothing is appended on error.
pub fn encode_message<M: Encode + ?Sized>(
    message: &M,
    request_id: i32,
    response_to: i32,
    compressor: Option<Compressor>,
    scratch: &mut Vec<u8>,
    buf: &mut Vec<u8>,
) -> Result<()> {
    match compressor {
        Some(c) if message.command_name().is_none_or(is_compressible) => {
            scratch.clear();
            message.encode(request_id, response_to, scratch)?;
            encode_compressed(scratch, c, buf)
        }
        _ => message.encode(request_id, response_to, buf),
    }
}

impl From<OpCode> for i32 {
    fn from(op: OpCode) -> Self {
        op.as_i32()
    }
}

impl TryFrom<i32> for OpCode {
    type Error = Error;

    fn try_from(value: i32) -> Result<Self> {
        Self::from_i32(value)
    }
}
