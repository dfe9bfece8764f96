//! Little-endian field readers and writers shared by the message codecs (crate-private).

use bson::RawDocument;

use crate::error::{Error, Result};
use crate::header::{HEADER_LEN, Header, OpCode};

/// A forward-only reader over untrusted bytes. Every accessor checks bounds and returns a typed
/// error instead of panicking.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len()
    }

    pub(crate) fn rest(&self) -> &'a [u8] {
        self.bytes
    }

    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        if n > self.bytes.len() {
            return Err(Error::Truncated(what));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N]> {
        let bytes = self.take(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8> {
        Ok(self.array::<1>(what)?[0])
    }

    pub(crate) fn i32(&mut self, what: &'static str) -> Result<i32> {
        Ok(i32::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn i64(&mut self, what: &'static str) -> Result<i64> {
        Ok(i64::from_le_bytes(self.array(what)?))
    }

    /// Reads a NUL-terminated UTF-8 string, returning it without the NUL.
    pub(crate) fn cstr(&mut self, what: &'static str) -> Result<&'a str> {
        let Some(nul) = self.bytes.iter().position(|b| *b == 0) else {
            return Err(Error::InvalidCString(what));
        };
        let raw = self.take(nul, what)?;
        self.take(1, what)?;
        std::str::from_utf8(raw).map_err(|_| Error::InvalidCString(what))
    }

    /// Reads one BSON document, checking its length prefix and trailing NUL. The element
    /// contents are validated lazily by `bson` when they are read.
    pub(crate) fn document(&mut self, what: &'static str) -> Result<&'a RawDocument> {
        let len = doc_len_prefix(self.bytes, what)?;
        let bytes = self.take(len, what)?;
        RawDocument::from_bytes(bytes).map_err(|_| Error::InvalidDocument(what))
    }

    pub(crate) fn finish(&self) -> Result<()> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(Error::TrailingBytes(self.bytes.len()))
        }
    }
}

/// Reads a document's length prefix, checking it is at least 5 and fits in `bytes`.
pub(crate) fn doc_len_prefix(bytes: &[u8], what: &'static str) -> Result<usize> {
    let Some([a, b, c, d]) = bytes.first_chunk::<4>() else {
        return Err(Error::Truncated(what));
    };
    let len = i32::from_le_bytes([*a, *b, *c, *d]);
    let len = usize::try_from(len).map_err(|_| Error::InvalidDocument(what))?;
    if len < 5 {
        return Err(Error::InvalidDocument(what));
    }
    if len > bytes.len() {
        return Err(Error::Truncated(what));
    }
    Ok(len)
}

/// Checks that `frame` is a whole message of opcode `op` and returns its header and body.
pub(crate) fn split_frame(frame: &[u8], op: OpCode) -> Result<(Header, &[u8])> {
    let header = Header::parse(frame, usize::MAX)?;
    if header.op_code != op {
        return Err(Error::UnknownOpCode(header.op_code.as_i32()));
    }
    body_of(frame, &header).map(|body| (header, body))
}

/// The bytes after the header, after checking the frame length matches the header.
pub(crate) fn body_of<'a>(frame: &'a [u8], header: &Header) -> Result<&'a [u8]> {
    if frame.len() != header.len() {
        return Err(Error::LengthMismatch {
            declared: header.len(),
            actual: frame.len(),
        });
    }
    frame
        .get(HEADER_LEN..)
        .ok_or(Error::Truncated("message header"))
}

pub(crate) fn put_i32(buf: &mut Vec<u8>, v: i32) {
    buf.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_u32(buf: &mut Vec<u8>, v: u32) {
    buf.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_i64(buf: &mut Vec<u8>, v: i64) {
    buf.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_cstr(buf: &mut Vec<u8>, s: &str, what: &'static str) -> Result<()> {
    if s.as_bytes().contains(&0) {
        return Err(Error::InteriorNul(what));
    }
    buf.extend_from_slice(s.as_bytes());
    buf.push(0);
    Ok(())
}

/// `i32::MAX` as a length.
pub(crate) const MAX_I32_LEN: usize = 0x7fff_ffff;

/// Reserves room for a header and returns the message's start offset.
pub(crate) fn begin_message(buf: &mut Vec<u8>) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&[0u8; HEADER_LEN]);
    start
}

/// Writes the header of the message that began at `start`, now that its length is known.
/// On error (message over `i32::MAX`) the partial message is removed from `buf`.
pub(crate) fn finish_message(
    buf: &mut Vec<u8>,
    start: usize,
    extra_len: usize,
    request_id: i32,
    response_to: i32,
    op_code: OpCode,
) -> Result<()> {
    let size = buf.len().saturating_sub(start).saturating_add(extra_len);
    let Ok(message_length) = i32::try_from(size) else {
        buf.truncate(start);
        return Err(Error::MessageTooLarge {
            size,
            max: MAX_I32_LEN,
        });
    };
    let header = Header {
        message_length,
        request_id,
        response_to,
        op_code,
    };
    if let Some(slot) = buf.get_mut(start..start + HEADER_LEN) {
        slot.copy_from_slice(&header.to_bytes());
    }
    Ok(())
}

/// Appends a whole message of opcode `op_code`: reserves the header, lets `body` write the
/// body, then fills the header in. On any error the partial message is removed from `buf`.
pub(crate) fn encode_with(
    buf: &mut Vec<u8>,
    request_id: i32,
    response_to: i32,
    op_code: OpCode,
    body: impl FnOnce(&mut Vec<u8>) -> Result<()>,
) -> Result<()> {
    let start = begin_message(buf);
    if let Err(e) = body(buf) {
        buf.truncate(start);
        return Err(e);
    }
    finish_message(buf, start, 0, request_id, response_to, op_code)
}

/// Declares a `u32` bit-flag newtype with named constants.
macro_rules! flags {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$fmeta:meta])* const $flag:ident = $value:expr; )* }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub struct $name(u32);

        impl $name {
            $( $(#[$fmeta])* pub const $flag: Self = Self($value); )*

            /// No flags set.
            #[must_use]
            pub const fn empty() -> Self {
                Self(0)
            }

            /// Wraps raw bits (unknown bits are kept).
            #[must_use]
            pub const fn from_bits(bits: u32) -> Self {
                Self(bits)
            }

            /// The raw bits.
            #[must_use]
            pub const fn bits(self) -> u32 {
                self.0
            }

            /// True when every bit of `other` is set in `self`.
            #[must_use]
            pub const fn contains(self, other: Self) -> bool {
                self.0 & other.0 == other.0
            }

            /// Sets or clears the bits of `other`.
            pub fn set(&mut self, other: Self, on: bool) {
                if on {
                    self.0 |= other.0;
                } else {
                    self.0 &= !other.0;
                }
            }

            /// `self` with the bits of `other` set.
            #[must_use]
            pub const fn with(self, other: Self) -> Self {
                Self(self.0 | other.0)
            }
        }

        impl std::ops::BitOr for $name {
            type Output = Self;
            fn bitor(self, rhs: Self) -> Self {
                Self(self.0 | rhs.0)
            }
        }

        impl std::ops::BitOrAssign for $name {
            fn bitor_assign(&mut self, rhs: Self) {
                self.0 |= rhs.0;
            }
        }
    };
}
pub(crate) use flags;
