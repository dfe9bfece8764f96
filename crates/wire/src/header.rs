//! The 16-byte message header shared by every opcode, and the [`OpCode`] enum.

use crate::error::{Error, LengthProblem, Result};

/// Size of the standard message header in bytes.
pub const HEADER_LEN: usize = 16;

/// The opcodes this crate encodes and decodes.
///
/// Deprecated opcodes that no supported server sends (OP_COMMAND, OP_COMMANDREPLY, the reserved
/// 2003) are not listed; reading one yields [`Error::UnknownOpCode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OpCode {
    /// OP_REPLY (1): reply to an OP_QUERY or OP_GET_MORE.
    Reply,
    /// OP_UPDATE (2001), legacy.
    Update,
    /// OP_INSERT (2002), legacy.
    Insert,
    /// OP_QUERY (2004), legacy; still used for the first legacy hello.
    Query,
    /// OP_GET_MORE (2005), legacy.
    GetMore,
    /// OP_DELETE (2006), legacy.
    Delete,
    /// OP_KILL_CURSORS (2007), legacy.
    KillCursors,
    /// OP_COMPRESSED (2012).
    Compressed,
    /// OP_MSG (2013).
    Msg,
}

impl OpCode {
    /// The opcode's value on the wire.
    #[must_use]
    pub const fn as_i32(self) -> i32 {
        match self {
            Self::Reply => 1,
            Self::Update => 2001,
            Self::Insert => 2002,
            Self::Query => 2004,
            Self::GetMore => 2005,
            Self::Delete => 2006,
            Self::KillCursors => 2007,
            Self::Compressed => 2012,
            Self::Msg => 2013,
        }
    }

    /// Parses a wire value.
    ///
    /// # Errors
    /// [`Error::UnknownOpCode`] for any value not listed in [`OpCode`].
    pub const fn from_i32(value: i32) -> Result<Self> {
        Ok(match value {
            1 => Self::Reply,
            2001 => Self::Update,
            2002 => Self::Insert,
            2004 => Self::Query,
            2005 => Self::GetMore,
            2006 => Self::Delete,
            2007 => Self::KillCursors,
            2012 => Self::Compressed,
            2013 => Self::Msg,
            other => return Err(Error::UnknownOpCode(other)),
        })
    }

    /// The smallest `messageLength` (header included) a valid message of this opcode can have.
    #[must_use]
    pub const fn min_message_len(self) -> usize {
        HEADER_LEN
            + match self {
                // flags, cursorID, startingFrom, numberReturned
                Self::Reply => 4 + 8 + 4 + 4,
                // ZERO, cstring, flags, selector, update
                Self::Update => 4 + 1 + 4 + 5 + 5,
                // flags, cstring, one document
                Self::Insert => 4 + 1 + 5,
                // flags, cstring, skip, return, query
                Self::Query => 4 + 1 + 4 + 4 + 5,
                // ZERO, cstring, numberToReturn, cursorID
                Self::GetMore => 4 + 1 + 4 + 8,
                // ZERO, cstring, flags, selector
                Self::Delete => 4 + 1 + 4 + 5,
                // ZERO, numberOfCursorIDs
                Self::KillCursors => 4 + 4,
                // originalOpcode, uncompressedSize, compressorId
                Self::Compressed => 4 + 4 + 1,
                // flagBits, kind byte, body document
                Self::Msg => 4 + 1 + 5,
            }
    }
}

/// The standard message header (`MsgHeader`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// Total message size in bytes, header included.
    pub message_length: i32,
    /// Identifier of this message, chosen by the sender.
    pub request_id: i32,
    /// `request_id` of the message this one answers (0 for requests).
    pub response_to: i32,
    /// The message's opcode.
    pub op_code: OpCode,
}

impl Header {
    /// Parses the first 16 bytes of `bytes` and validates `messageLength` against the opcode's
    /// minimum and `max_message_size`. Does not require the rest of the message to be present.
    ///
    /// # Errors
    /// [`Error::Truncated`] with fewer than 16 bytes, [`Error::UnknownOpCode`],
    /// [`Error::InvalidLength`].
    pub fn parse(bytes: &[u8], max_message_size: usize) -> Result<Self> {
        let (length, request_id, response_to, op) = match bytes {
            [
                a0,
                a1,
                a2,
                a3,
                b0,
                b1,
                b2,
                b3,
                c0,
                c1,
                c2,
                c3,
                d0,
                d1,
                d2,
                d3,
                ..,
            ] => (
                i32::from_le_bytes([*a0, *a1, *a2, *a3]),
                i32::from_le_bytes([*b0, *b1, *b2, *b3]),
                i32::from_le_bytes([*c0, *c1, *c2, *c3]),
                i32::from_le_bytes([*d0, *d1, *d2, *d3]),
            ),
            _ => return Err(Error::Truncated("message header")),
        };
        check_length_prefix(length, max_message_size)?;
        let op_code = OpCode::from_i32(op)?;
        let header = Self {
            message_length: length,
            request_id,
            response_to,
            op_code,
        };
        header.check_min_len()?;
        Ok(header)
    }

    /// `message_length` as a `usize` (it is validated non-negative by [`Header::parse`]).
    #[must_use]
    pub fn len(&self) -> usize {
        usize::try_from(self.message_length).unwrap_or(0)
    }

    /// True when `message_length` is zero (never true for a parsed header).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.message_length == 0
    }

    fn check_min_len(&self) -> Result<()> {
        let minimum = self.op_code.min_message_len();
        if self.len() < minimum {
            return Err(Error::InvalidLength {
                length: i64::from(self.message_length),
                reason: LengthProblem::TooSmall {
                    op_code: Some(self.op_code),
                    minimum,
                },
            });
        }
        Ok(())
    }

    /// Appends the 16 header bytes to `buf`.
    pub fn write(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&self.to_bytes());
    }

    /// The 16 header bytes.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        let fields = [
            self.message_length,
            self.request_id,
            self.response_to,
            self.op_code.as_i32(),
        ];
        for (chunk, value) in out.chunks_exact_mut(4).zip(fields) {
            chunk.copy_from_slice(&value.to_le_bytes());
        }
        out
    }
}

/// Validates a `messageLength` seen before the opcode is known: it must not be negative, must
/// hold at least a header, and must not exceed `max_message_size`. Returns it as `usize`.
pub(crate) fn check_length_prefix(length: i32, max_message_size: usize) -> Result<usize> {
    let Ok(len) = usize::try_from(length) else {
        return Err(Error::InvalidLength {
            length: i64::from(length),
            reason: LengthProblem::Negative,
        });
    };
    if len < HEADER_LEN {
        return Err(Error::InvalidLength {
            length: i64::from(length),
            reason: LengthProblem::TooSmall {
                op_code: None,
                minimum: HEADER_LEN,
            },
        });
    }
    if len > max_message_size {
        return Err(Error::InvalidLength {
            length: i64::from(length),
            reason: LengthProblem::TooLarge {
                max: max_message_size,
            },
        });
    }
    Ok(len)
}
