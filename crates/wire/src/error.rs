//! The crate's single error type.

use crate::compress::Compressor;
use crate::header::OpCode;

/// Everything that can go wrong while framing, decoding, encoding, compressing or transporting
/// wire-protocol messages.
///
/// Variants are grouped by cause: the peer sent bytes that are not a valid message (the
/// connection must be closed), the peer uses something this build cannot handle, the caller
/// misused the API (for example a document over `maxBsonObjectSize`), or I/O failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ----- peer sent garbage -----
    /// The header carries an opcode this crate does not know.
    #[error("unknown opcode {0}")]
    UnknownOpCode(i32),
    /// `messageLength` is negative, smaller than the smallest valid message of its opcode, or
    /// larger than the caller's maximum message size.
    #[error("invalid message length {length}: {reason}")]
    InvalidLength {
        /// The declared `messageLength`.
        length: i64,
        /// Why it was rejected.
        reason: LengthProblem,
    },
    /// The frame handed to a decoder is not exactly `messageLength` bytes long.
    #[error("frame is {actual} bytes but its header declares {declared}")]
    LengthMismatch {
        /// Length declared in the header.
        declared: usize,
        /// Bytes actually given.
        actual: usize,
    },
    /// A field runs past the end of the message.
    #[error("message truncated while reading {0}")]
    Truncated(&'static str),
    /// Bytes remain after the last field of a message.
    #[error("{0} unexpected bytes after the end of the message")]
    TrailingBytes(usize),
    /// A C string is not NUL-terminated or not UTF-8.
    #[error("invalid cstring in {0}")]
    InvalidCString(&'static str),
    /// A BSON document's framing (length prefix or trailing NUL) is invalid.
    #[error("invalid BSON document in {0}")]
    InvalidDocument(&'static str),
    /// A count field (numberReturned, numberOfCursorIDs, ...) is negative or does not match
    /// the bytes that follow.
    #[error("invalid count in {field}: {value}")]
    InvalidCount {
        /// Which field.
        field: &'static str,
        /// The value found.
        value: i64,
    },
    /// OP_MSG flag bits 0-15 contain a bit this crate does not understand.
    #[error("OP_MSG has unknown required flag bits {0:#010x}")]
    UnknownRequiredFlags(u32),
    /// An OP_MSG section has a payload type other than 0 or 1.
    #[error("unknown OP_MSG section kind {0}")]
    UnknownSectionKind(u8),
    /// An OP_MSG has no kind-0 body section.
    #[error("OP_MSG has no body section")]
    MissingBody,
    /// An OP_MSG has more than one kind-0 body section.
    #[error("OP_MSG has more than one body section")]
    DuplicateBody,
    /// Two document sequences of one OP_MSG share an identifier.
    #[error("OP_MSG has two document sequences named {0:?}")]
    DuplicateSequence(String),
    /// The OP_MSG CRC-32C checksum does not match the message.
    #[error("OP_MSG checksum mismatch: message says {expected:#010x}, computed {actual:#010x}")]
    ChecksumMismatch {
        /// Checksum carried by the message.
        expected: u32,
        /// Checksum computed over the received bytes.
        actual: u32,
    },
    /// An OP_COMPRESSED names a compressor id that is not defined.
    #[error("unknown compressor id {0}")]
    UnknownCompressorId(u8),
    /// An OP_COMPRESSED wraps another OP_COMPRESSED.
    #[error("OP_COMPRESSED may not wrap OP_COMPRESSED")]
    NestedCompression,
    /// The declared uncompressed size is negative or over the maximum message size.
    #[error("declared uncompressed size {declared} exceeds the limit {max}")]
    UncompressedSizeTooLarge {
        /// The `uncompressedSize` field.
        declared: i64,
        /// The largest body allowed.
        max: usize,
    },
    /// The payload decompressed to a size other than the declared one.
    #[error("payload decompressed to a size other than the declared {declared} bytes")]
    DecompressedSizeMismatch {
        /// The `uncompressedSize` field.
        declared: usize,
    },
    /// The compressed payload is corrupt.
    #[error("{compressor} decompression failed: {message}")]
    Decompression {
        /// The compressor used.
        compressor: Compressor,
        /// The library's error text.
        message: String,
    },

    // ----- peer incompatible / build lacks support -----
    /// The compressor is known but support for it was not compiled in (cargo feature off).
    #[error("compressor {0} is not enabled in this build")]
    CompressorNotEnabled(Compressor),
    /// A compressor name is not one of noop, snappy, zlib, zstd.
    #[error("unknown compressor name {0:?}")]
    UnknownCompressorName(String),

    // ----- API misuse / limits -----
    /// A document is larger than `maxBsonObjectSize`.
    #[error("document {index} is {size} bytes, over maxBsonObjectSize {max}")]
    DocumentTooLarge {
        /// Position of the document in the batch (0 for a command body).
        index: usize,
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// An encoded message would be larger than the limit (or than `i32::MAX`).
    #[error("message of {size} bytes exceeds the limit {max}")]
    MessageTooLarge {
        /// The size of the message.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A string meant for the wire contains a NUL byte.
    #[error("{0} contains a NUL byte")]
    InteriorNul(&'static str),
    /// The zlib compression level is outside -1..=9.
    #[error("invalid zlib compression level {0} (expected -1..=9)")]
    InvalidZlibLevel(i32),
    /// A message given to the compressor is itself malformed or already compressed.
    #[error("cannot compress: {0}")]
    NotCompressible(&'static str),
    /// Compression failed inside the compression library.
    #[error("{compressor} compression failed: {message}")]
    Compression {
        /// The compressor used.
        compressor: Compressor,
        /// The library's error text.
        message: String,
    },

    // ----- I/O -----
    /// Reading or writing the transport failed (including EOF in the middle of a message).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// Why a `messageLength` was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LengthProblem {
    /// The length is negative.
    Negative,
    /// The length is smaller than the smallest valid message of the opcode.
    TooSmall {
        /// The opcode, if already known.
        op_code: Option<OpCode>,
        /// The smallest valid length.
        minimum: usize,
    },
    /// The length is over the maximum message size.
    TooLarge {
        /// The maximum message size in force.
        max: usize,
    },
}

impl std::fmt::Display for LengthProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Negative => f.write_str("negative"),
            Self::TooSmall {
                op_code: Some(op),
                minimum,
            } => write!(f, "below the minimum {minimum} for {op:?}"),
            Self::TooSmall {
                op_code: None,
                minimum,
            } => write!(f, "below the minimum {minimum}"),
            Self::TooLarge { max } => write!(f, "over the maximum message size {max}"),
        }
    }
}

impl Error {
    /// True when the error means the peer sent bytes that are not a valid message, so the
    /// connection's byte stream can no longer be trusted and must be closed.
    #[must_use]
    pub fn is_protocol_violation(&self) -> bool {
        !matches!(
            self,
            Self::Io(_)
                | Self::DocumentTooLarge { .. }
                | Self::MessageTooLarge { .. }
                | Self::InteriorNul(_)
                | Self::InvalidZlibLevel(_)
                | Self::NotCompressible(_)
                | Self::Compression { .. }
                | Self::UnknownCompressorName(_)
        )
    }
}

/// The crate's result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;
