//! The incremental, sans-I/O [`FrameReader`].

use crate::error::Result;
use crate::header::{HEADER_LEN, Header, check_length_prefix};
use crate::limits::DEFAULT_MAX_MESSAGE_SIZE_BYTES;

/// What [`FrameReader::next_frame`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameStatus<'a> {
    /// At least this many more bytes are needed before the next frame is complete.
    NeedMore(usize),
    /// One whole frame (header included), borrowed from the reader until its next call.
    Frame(&'a [u8]),
}

/// Splits a byte stream into whole messages.
///
/// Feed it bytes as they arrive with [`FrameReader::push`], then call
/// [`FrameReader::next_frame`] until it answers [`FrameStatus::NeedMore`]. The declared
/// `messageLength` is validated as soon as its 4 bytes (and the opcode with 16) are buffered:
/// a negative length, one under the opcode's minimum, one over the maximum message size, or an
/// unknown opcode is an error before any room is reserved for the body. After an error the
/// stream cannot be resynchronised: close the connection.
#[derive(Debug, Clone)]
pub struct FrameReader {
    buf: Vec<u8>,
    pos: usize,
    max_message_size: usize,
}

impl Default for FrameReader {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_MESSAGE_SIZE_BYTES)
    }
}

impl FrameReader {
    /// A reader enforcing `max_message_size` (maxMessageSizeBytes from hello; 48,000,000 by
    /// default).
    #[must_use]
    pub fn new(max_message_size: usize) -> Self {
        Self {
            buf: Vec::new(),
            pos: 0,
            max_message_size,
        }
    }

    /// Changes the maximum message size (for example once hello has answered).
    pub fn set_max_message_size(&mut self, max_message_size: usize) {
        self.max_message_size = max_message_size;
    }

    /// The maximum message size in force.
    #[must_use]
    pub fn max_message_size(&self) -> usize {
        self.max_message_size
    }

    /// Bytes buffered and not yet returned as frames.
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// Appends bytes read from the transport.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.pos > 0 {
            self.buf.drain(..self.pos.min(self.buf.len()));
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Returns the next whole frame, or how many bytes are still missing.
    ///
    /// # Errors
    /// [`crate::Error::InvalidLength`] or [`crate::Error::UnknownOpCode`] as soon as the header
    /// shows the frame is invalid.
    pub fn next_frame(&mut self) -> Result<FrameStatus<'_>> {
        let avail = self.buf.get(self.pos..).unwrap_or_default();
        let Some(prefix) = avail.first_chunk::<4>() else {
            return Ok(FrameStatus::NeedMore(HEADER_LEN - avail.len()));
        };
        let len = check_length_prefix(i32::from_le_bytes(*prefix), self.max_message_size)?;
        if avail.len() < HEADER_LEN {
            return Ok(FrameStatus::NeedMore(HEADER_LEN - avail.len()));
        }
        Header::parse(avail, self.max_message_size)?;
        let have = avail.len();
        if have < len {
            // Room for one step more than arrived, not for what the header claims; `reserve`
            // grows geometrically (at most twice what arrived), so a long message is not
            // copied once per read.
            self.buf.reserve((len - have).min(crate::limits::READ_STEP));
            return Ok(FrameStatus::NeedMore(len - have));
        }
        let start = self.pos;
        self.pos += len;
        Ok(FrameStatus::Frame(
            self.buf.get(start..start + len).unwrap_or_default(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::READ_STEP;

    #[test]
    fn a_header_claiming_a_huge_body_reserves_one_step() {
        let mut head = Vec::new();
        head.extend_from_slice(&40_000_000_i32.to_le_bytes());
        head.extend_from_slice(&1_i32.to_le_bytes());
        head.extend_from_slice(&0_i32.to_le_bytes());
        head.extend_from_slice(&2013_i32.to_le_bytes());
        let mut r = FrameReader::default();
        r.push(&head);
        assert_eq!(
            r.next_frame().unwrap(),
            FrameStatus::NeedMore(40_000_000 - HEADER_LEN)
        );
        assert!(r.buf.capacity() <= HEADER_LEN + READ_STEP);
    }
}
