//! Async reading and writing of whole messages over tokio's `AsyncRead` / `AsyncWrite`
//! (feature `tokio`). Both halves keep their buffers between messages.
//!
//! Cancellation: dropping a read or write future part-way leaves the stream in the middle of a
//! message; the connection must then be closed, never reused.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::compress::{Compressor, OpCompressedRef};
use crate::error::Result;
use crate::header::{HEADER_LEN, Header, OpCode};
use crate::limits::{DEFAULT_MAX_MESSAGE_SIZE_BYTES, READ_STEP};
use crate::message::{Decoded, Encode, decode_message, encode_message};

/// Reads whole messages, reusing its buffers.
#[derive(Debug, Clone)]
pub struct MessageReader {
    buf: Vec<u8>,
    inflated: Vec<u8>,
    max_message_size: usize,
    last_compressor: Option<Compressor>,
}

impl Default for MessageReader {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_MESSAGE_SIZE_BYTES)
    }
}

impl MessageReader {
    /// A reader enforcing `max_message_size` (maxMessageSizeBytes).
    #[must_use]
    pub fn new(max_message_size: usize) -> Self {
        Self {
            buf: Vec::new(),
            inflated: Vec::new(),
            max_message_size,
            last_compressor: None,
        }
    }

    /// Changes the maximum message size.
    pub fn set_max_message_size(&mut self, max_message_size: usize) {
        self.max_message_size = max_message_size;
    }

    /// The compressor of the last message read, if it was OP_COMPRESSED.
    #[must_use]
    pub fn last_compressor(&self) -> Option<Compressor> {
        self.last_compressor
    }

    /// Reads one whole frame as it is on the wire (possibly OP_COMPRESSED). The header is
    /// validated (length, opcode) before the body buffer is sized.
    ///
    /// # Errors
    /// [`crate::Error::Io`] (EOF included) and header errors.
    pub async fn read_frame<R: AsyncRead + Unpin + ?Sized>(
        &mut self,
        reader: &mut R,
    ) -> Result<&[u8]> {
        self.fill_frame(reader).await?;
        Ok(&self.buf)
    }

    /// Reads one whole frame into `buf` and returns its (validated) header.
    async fn fill_frame<R: AsyncRead + Unpin + ?Sized>(
        &mut self,
        reader: &mut R,
    ) -> Result<Header> {
        let mut head = [0u8; HEADER_LEN];
        reader.read_exact(&mut head).await?;
        let header = Header::parse(&head, self.max_message_size)?;
        self.buf.clear();
        self.buf.extend_from_slice(&head);
        // The body is read in steps of at most READ_STEP bytes, and room is made for a step
        // only once the previous one arrived: whatever length the header claims, the buffer
        // never holds more than twice the bytes that arrived plus one step (`reserve` grows
        // geometrically, so a large first message is not copied once per step).
        let len = header.len();
        while self.buf.len() < len {
            let have = self.buf.len();
            let step = (len - have).min(READ_STEP);
            self.buf.reserve(step);
            self.buf.resize(have + step, 0);
            if let Some(chunk) = self.buf.get_mut(have..) {
                reader.read_exact(chunk).await?;
            }
        }
        Ok(header)
    }

    /// Reads and decodes one message, decompressing OP_COMPRESSED transparently (bounded by the
    /// maximum message size). The result borrows the reader's buffers.
    ///
    /// # Errors
    /// I/O, framing, decompression and decoding errors.
    pub async fn read_message<R: AsyncRead + Unpin + ?Sized>(
        &mut self,
        reader: &mut R,
    ) -> Result<Decoded<'_>> {
        let header = self.fill_frame(reader).await?;
        if header.op_code == OpCode::Compressed {
            let compressed = OpCompressedRef::decode(&self.buf)?;
            compressed.decompress_into(self.max_message_size, &mut self.inflated)?;
            self.last_compressor = Some(compressed.compressor);
            decode_message(&self.inflated)
        } else {
            self.last_compressor = None;
            decode_message(&self.buf)
        }
    }
}

/// Writes whole messages, reusing its buffers.
#[derive(Debug, Clone, Default)]
pub struct MessageWriter {
    buf: Vec<u8>,
    scratch: Vec<u8>,
}

impl MessageWriter {
    /// A writer with empty buffers.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Encodes `message` (compressed with `compressor` when given and the command allows it,
    /// see [`crate::encode_message`]), writes it and flushes.
    ///
    /// # Errors
    /// Encoding, compression and I/O errors.
    pub async fn write_message<W: AsyncWrite + Unpin + ?Sized, M: Encode + ?Sized>(
        &mut self,
        writer: &mut W,
        message: &M,
        request_id: i32,
        response_to: i32,
        compressor: Option<Compressor>,
    ) -> Result<()> {
        self.buf.clear();
        encode_message(
            message,
            request_id,
            response_to,
            compressor,
            &mut self.scratch,
            &mut self.buf,
        )?;
        self.write_bytes(writer).await
    }

    /// Writes already encoded bytes (for example several messages) and flushes.
    ///
    /// # Errors
    /// I/O errors.
    pub async fn write_raw<W: AsyncWrite + Unpin + ?Sized>(
        &mut self,
        writer: &mut W,
        bytes: &[u8],
    ) -> Result<()> {
        writer.write_all(bytes).await?;
        writer.flush().await?;
        Ok(())
    }

    async fn write_bytes<W: AsyncWrite + Unpin + ?Sized>(&mut self, writer: &mut W) -> Result<()> {
        writer.write_all(&self.buf).await?;
        writer.flush().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_header_claiming_a_huge_body_allocates_only_what_arrived() {
        // A header announcing 40 MB of OP_MSG, then 100 bytes and the end of the stream.
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&40_000_000_i32.to_le_bytes());
        bytes.extend_from_slice(&1_i32.to_le_bytes());
        bytes.extend_from_slice(&0_i32.to_le_bytes());
        bytes.extend_from_slice(&2013_i32.to_le_bytes());
        bytes.extend_from_slice(&[0u8; 100]);
        let mut reader = MessageReader::default();
        let mut input: &[u8] = &bytes;
        assert!(reader.read_frame(&mut input).await.is_err());
        assert!(
            reader.buf.capacity() <= HEADER_LEN + READ_STEP,
            "{} bytes buffered for 116 that arrived",
            reader.buf.capacity()
        );
    }

    #[tokio::test]
    async fn a_large_message_still_arrives_whole() {
        let doc = bson::rawdoc! { "ok": 1, "pad": "x".repeat(3 * READ_STEP + 17) };
        let msg = crate::OpMsg::new(doc.clone());
        let mut wire = Vec::new();
        msg.encode(5, 0, &mut wire).unwrap();
        let mut reader = MessageReader::default();
        let mut input: &[u8] = &wire;
        let frame = reader.read_frame(&mut input).await.unwrap();
        assert_eq!(frame, wire.as_slice());
    }
}
