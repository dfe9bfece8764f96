//! OP_MSG: flag bits, the kind-0 body, kind-1 document sequences and the CRC-32C checksum.

use std::collections::HashSet;
use std::ops::Range;

use bson::{RawDocument, RawDocumentBuf};

use crate::codec::{self, Reader, begin_message, finish_message, flags, put_cstr, put_u32};
use crate::error::{Error, Result};
use crate::header::{HEADER_LEN, OpCode};
use crate::limits::{COMMAND_OVERHEAD, SizeLimits};

flags! {
    /// OP_MSG `flagBits`. Bits 0-15 are required: decoding fails if an unknown one is set.
    /// Bits 16-31 are optional and unknown ones are ignored (but kept in the value).
    MsgFlags {
        /// Bit 0: the message ends with a CRC-32C checksum.
        const CHECKSUM_PRESENT = 1;
        /// Bit 1: the sender will send another message without waiting for a reply.
        const MORE_TO_COME = 1 << 1;
        /// Bit 16: the client accepts several replies (exhaust) to this request.
        const EXHAUST_ALLOWED = 1 << 16;
    }
}

/// The required bits (0-15) this crate understands.
const KNOWN_REQUIRED: u32 = MsgFlags::CHECKSUM_PRESENT.bits() | MsgFlags::MORE_TO_COME.bits();

/// An owned kind-1 section: an identifier and the documents it carries.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentSequence {
    /// The command argument the documents belong to (`documents`, `updates`, `deletes`, ...).
    pub identifier: String,
    /// The documents, in order.
    pub documents: Vec<RawDocumentBuf>,
}

impl DocumentSequence {
    fn payload_len(&self) -> usize {
        4 + self.identifier.len()
            + 1
            + self
                .documents
                .iter()
                .map(|d| d.as_bytes().len())
                .sum::<usize>()
    }
}

/// An owned OP_MSG, for building requests (or replies in a test server).
///
/// Setting [`MsgFlags::CHECKSUM_PRESENT`] in `flags` makes [`OpMsg::encode`] append a CRC-32C.
#[derive(Debug, Clone, PartialEq)]
pub struct OpMsg {
    /// The flag bits.
    pub flags: MsgFlags,
    /// The kind-0 body: the command document (or reply).
    pub body: RawDocumentBuf,
    /// The kind-1 document sequences, written after the body.
    pub sequences: Vec<DocumentSequence>,
}

impl OpMsg {
    /// A message with `body`, no sequences and no flags.
    #[must_use]
    pub fn new(body: RawDocumentBuf) -> Self {
        Self {
            flags: MsgFlags::empty(),
            body,
            sequences: Vec::new(),
        }
    }

    /// Adds a document sequence.
    #[must_use]
    pub fn with_sequence(
        mut self,
        identifier: impl Into<String>,
        documents: Vec<RawDocumentBuf>,
    ) -> Self {
        self.sequences.push(DocumentSequence {
            identifier: identifier.into(),
            documents,
        });
        self
    }

    /// Replaces the flag bits.
    #[must_use]
    pub fn with_flags(mut self, flags: MsgFlags) -> Self {
        self.flags = flags;
        self
    }

    /// Sets `checksumPresent`, so that encoding appends a CRC-32C.
    #[must_use]
    pub fn with_checksum(mut self) -> Self {
        self.flags |= MsgFlags::CHECKSUM_PRESENT;
        self
    }

    /// The command name: the first key of the body.
    #[must_use]
    pub fn command_name(&self) -> Option<&str> {
        first_key(&self.body)
    }

    /// The exact number of bytes [`OpMsg::encode`] writes.
    #[must_use]
    pub fn encoded_len(&self) -> usize {
        let checksum = if self.flags.contains(MsgFlags::CHECKSUM_PRESENT) {
            4
        } else {
            0
        };
        HEADER_LEN
            + 4
            + 1
            + self.body.as_bytes().len()
            + self
                .sequences
                .iter()
                .map(|s| 1 + s.payload_len())
                .sum::<usize>()
            + checksum
    }

    /// Appends the encoded message to `buf`.
    ///
    /// # Errors
    /// [`Error::InteriorNul`] for an identifier with a NUL byte, [`Error::DuplicateSequence`] for
    /// two sequences with one identifier, [`Error::MessageTooLarge`] past `i32::MAX` bytes. On
    /// error nothing is left appended.
    pub fn encode(&self, request_id: i32, response_to: i32, buf: &mut Vec<u8>) -> Result<()> {
        for (i, seq) in self.sequences.iter().enumerate() {
            if self
                .sequences
                .iter()
                .take(i)
                .any(|s| s.identifier == seq.identifier)
            {
                return Err(Error::DuplicateSequence(seq.identifier.clone()));
            }
        }
        buf.reserve(self.encoded_len());
        let start = begin_message(buf);
        put_u32(buf, self.flags.bits());
        buf.push(0);
        buf.extend_from_slice(self.body.as_bytes());
        for seq in &self.sequences {
            buf.push(1);
            let Ok(size) = i32::try_from(seq.payload_len()) else {
                buf.truncate(start);
                return Err(Error::MessageTooLarge {
                    size: seq.payload_len(),
                    max: codec::MAX_I32_LEN,
                });
            };
            codec::put_i32(buf, size);
            if let Err(e) = put_cstr(buf, &seq.identifier, "document sequence identifier") {
                buf.truncate(start);
                return Err(e);
            }
            for doc in &seq.documents {
                buf.extend_from_slice(doc.as_bytes());
            }
        }
        let checksum = self.flags.contains(MsgFlags::CHECKSUM_PRESENT);
        finish_message(
            buf,
            start,
            if checksum { 4 } else { 0 },
            request_id,
            response_to,
            OpCode::Msg,
        )?;
        if checksum {
            let crc = crc32c::crc32c(buf.get(start..).unwrap_or_default());
            put_u32(buf, crc);
        }
        Ok(())
    }

    /// Splits `documents` into as many messages as needed so that none exceeds the limits:
    /// at most `max_write_batch_size` documents and `max_message_size_bytes` bytes per message,
    /// every document at most `max_bson_object_size`, and the body at most
    /// `max_bson_object_size` + 16 KiB. Each message carries a copy of `body` and `flags`.
    /// An empty `documents` yields no messages.
    ///
    /// # Errors
    /// [`Error::DocumentTooLarge`] or [`Error::MessageTooLarge`] when a single document or the
    /// body cannot fit in any message.
    pub fn split_batch(
        body: &RawDocument,
        identifier: &str,
        documents: Vec<RawDocumentBuf>,
        flags: MsgFlags,
        limits: &SizeLimits,
    ) -> Result<Vec<Self>> {
        let ranges = batch_ranges(
            body.as_bytes().len(),
            identifier,
            &documents,
            flags.contains(MsgFlags::CHECKSUM_PRESENT),
            limits,
        )?;
        let mut rest = documents.into_iter();
        Ok(ranges
            .into_iter()
            .map(|r| Self {
                flags,
                body: body.to_owned(),
                sequences: vec![DocumentSequence {
                    identifier: identifier.to_owned(),
                    documents: rest.by_ref().take(r.len()).collect(),
                }],
            })
            .collect())
    }
}

/// Computes how to split `documents` into OP_MSG document sequences (see
/// [`OpMsg::split_batch`]): returns consecutive index ranges, one per message, for a body of
/// `body_len` bytes and a sequence named `identifier`.
///
/// # Errors
/// As [`OpMsg::split_batch`].
pub fn batch_ranges<D: AsRef<RawDocument>>(
    body_len: usize,
    identifier: &str,
    documents: &[D],
    checksum: bool,
    limits: &SizeLimits,
) -> Result<Vec<Range<usize>>> {
    let max_body = limits.max_bson_object_size.saturating_add(COMMAND_OVERHEAD);
    if body_len > max_body {
        return Err(Error::MessageTooLarge {
            size: body_len,
            max: max_body,
        });
    }
    let max_msg = limits.max_message_size_bytes;
    let max_count = limits.max_write_batch_size.max(1);
    let fixed =
        HEADER_LEN + 4 + 1 + body_len + 1 + 4 + identifier.len() + 1 + if checksum { 4 } else { 0 };
    let mut out = Vec::new();
    let mut batch_start = 0;
    let mut size = fixed;
    for (index, doc) in documents.iter().enumerate() {
        let len = doc.as_ref().as_bytes().len();
        if len > limits.max_bson_object_size {
            return Err(Error::DocumentTooLarge {
                index,
                size: len,
                max: limits.max_bson_object_size,
            });
        }
        let count = index - batch_start;
        if count > 0 && (count >= max_count || size.saturating_add(len) > max_msg) {
            out.push(batch_start..index);
            batch_start = index;
            size = fixed;
        }
        size = size.saturating_add(len);
        if size > max_msg {
            return Err(Error::MessageTooLarge { size, max: max_msg });
        }
    }
    if batch_start < documents.len() {
        out.push(batch_start..documents.len());
    }
    Ok(out)
}

/// A borrowed kind-1 section of a decoded OP_MSG. The documents reference the frame buffer;
/// nothing is copied.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DocumentSequenceRef<'a> {
    /// The sequence's identifier.
    pub identifier: &'a str,
    bytes: &'a [u8],
    count: usize,
}

impl<'a> DocumentSequenceRef<'a> {
    /// The documents, in order, borrowed from the frame.
    #[must_use]
    pub fn documents(&self) -> DocumentIter<'a> {
        DocumentIter {
            bytes: self.bytes,
            left: self.count,
        }
    }

    /// Number of documents.
    #[must_use]
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when the sequence carries no documents.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The concatenated document bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Copies the sequence into an owned [`DocumentSequence`].
    #[must_use]
    pub fn to_owned_sequence(&self) -> DocumentSequence {
        DocumentSequence {
            identifier: self.identifier.to_owned(),
            documents: self.documents().map(ToOwned::to_owned).collect(),
        }
    }
}

/// Iterator over the documents of a [`DocumentSequenceRef`] (already validated at decode).
#[derive(Debug, Clone)]
pub struct DocumentIter<'a> {
    bytes: &'a [u8],
    left: usize,
}

impl<'a> Iterator for DocumentIter<'a> {
    type Item = &'a RawDocument;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        let mut reader = Reader::new(self.bytes);
        let doc = reader.document("document sequence").ok()?;
        self.bytes = reader.rest();
        self.left -= 1;
        Some(doc)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for DocumentIter<'_> {}

/// A decoded OP_MSG borrowing the frame it was decoded from.
#[derive(Debug, Clone, PartialEq)]
pub struct OpMsgRef<'a> {
    /// The flag bits as received (unknown optional bits kept).
    pub flags: MsgFlags,
    /// The kind-0 body.
    pub body: &'a RawDocument,
    /// The kind-1 sections, in wire order.
    pub sequences: Vec<DocumentSequenceRef<'a>>,
    /// The checksum, when `checksumPresent` was set (already verified).
    pub checksum: Option<u32>,
}

impl<'a> OpMsgRef<'a> {
    /// Decodes a whole OP_MSG frame (header included).
    ///
    /// # Errors
    /// Any decoding error: wrong length, unknown required flags, bad sections, missing or
    /// repeated body, repeated identifiers, checksum mismatch.
    pub fn decode(frame: &'a [u8]) -> Result<Self> {
        let (_, _) = codec::split_frame(frame, OpCode::Msg)?;
        Self::decode_frame(frame)
    }

    /// Decodes an OP_MSG whose header was already validated against `frame`.
    pub(crate) fn decode_frame(frame: &'a [u8]) -> Result<Self> {
        let body = frame
            .get(HEADER_LEN..)
            .ok_or(Error::Truncated("message header"))?;
        let mut reader = Reader::new(body);
        let flags = MsgFlags::from_bits(reader.u32("flagBits")?);
        let unknown = flags.bits() & 0xffff & !KNOWN_REQUIRED;
        if unknown != 0 {
            return Err(Error::UnknownRequiredFlags(unknown));
        }
        let (sections, checksum) = if flags.contains(MsgFlags::CHECKSUM_PRESENT) {
            let rest = reader.rest();
            let Some((sections, crc)) = rest.split_last_chunk::<4>() else {
                return Err(Error::Truncated("checksum"));
            };
            let expected = u32::from_le_bytes(*crc);
            let covered = frame
                .get(..frame.len().saturating_sub(4))
                .unwrap_or_default();
            let actual = crc32c::crc32c(covered);
            if expected != actual {
                return Err(Error::ChecksumMismatch { expected, actual });
            }
            (sections, Some(expected))
        } else {
            (reader.rest(), None)
        };
        let mut reader = Reader::new(sections);
        let mut body = None;
        let mut sequences: Vec<DocumentSequenceRef<'a>> = Vec::new();
        // A set, not a scan of `sequences`: a peer can send millions of tiny sections.
        let mut identifiers: HashSet<&'a str> = HashSet::new();
        while reader.remaining() > 0 {
            match reader.u8("section kind")? {
                0 => {
                    let doc = reader.document("OP_MSG body")?;
                    if body.replace(doc).is_some() {
                        return Err(Error::DuplicateBody);
                    }
                }
                1 => {
                    let seq = decode_sequence(&mut reader)?;
                    if !identifiers.insert(seq.identifier) {
                        return Err(Error::DuplicateSequence(seq.identifier.to_owned()));
                    }
                    sequences.push(seq);
                }
                other => return Err(Error::UnknownSectionKind(other)),
            }
        }
        Ok(Self {
            flags,
            body: body.ok_or(Error::MissingBody)?,
            sequences,
            checksum,
        })
    }

    /// The command name: the first key of the body.
    #[must_use]
    pub fn command_name(&self) -> Option<&'a str> {
        first_key(self.body)
    }

    /// The document sequence named `identifier`, if present.
    #[must_use]
    pub fn sequence(&self, identifier: &str) -> Option<&DocumentSequenceRef<'a>> {
        self.sequences.iter().find(|s| s.identifier == identifier)
    }

    /// True when `moreToCome` is set.
    #[must_use]
    pub fn more_to_come(&self) -> bool {
        self.flags.contains(MsgFlags::MORE_TO_COME)
    }

    /// Copies the message into an owned [`OpMsg`] (flags kept, so a checksum is re-computed if
    /// it is encoded again).
    #[must_use]
    pub fn to_owned_msg(&self) -> OpMsg {
        OpMsg {
            flags: self.flags,
            body: self.body.to_owned(),
            sequences: self
                .sequences
                .iter()
                .map(DocumentSequenceRef::to_owned_sequence)
                .collect(),
        }
    }
}

fn decode_sequence<'a>(reader: &mut Reader<'a>) -> Result<DocumentSequenceRef<'a>> {
    let size = reader.i32("document sequence size")?;
    let size = usize::try_from(size)
        .ok()
        .and_then(|s| s.checked_sub(4))
        .ok_or(Error::InvalidCount {
            field: "document sequence size",
            value: i64::from(size),
        })?;
    let payload = reader.take(size, "document sequence")?;
    let mut inner = Reader::new(payload);
    let identifier = inner.cstr("document sequence identifier")?;
    let bytes = inner.rest();
    let mut count = 0;
    while inner.remaining() > 0 {
        inner.document("document sequence")?;
        count += 1;
    }
    Ok(DocumentSequenceRef {
        identifier,
        bytes,
        count,
    })
}

fn first_key(doc: &RawDocument) -> Option<&str> {
    doc.iter_elements()
        .next()
        .and_then(|e| e.ok())
        .map(|e| e.key().as_str())
}
