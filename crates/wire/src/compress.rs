//! OP_COMPRESSED: the [`Compressor`] ids, compressing a whole encoded message, and bounded
//! decompression.
//!
//! Decompression never trusts the peer: the declared `uncompressedSize` is checked against the
//! maximum message size before any buffer is allocated, each decompressor writes into a buffer
//! of exactly the declared size (so it can never produce more), and a payload that decompresses
//! to fewer or more bytes than declared is an error.

use std::fmt;
use std::str::FromStr;

use crate::codec::{Reader, begin_message, body_of, finish_message, put_i32, split_frame};
use crate::error::{Error, LengthProblem, Result};
use crate::header::{HEADER_LEN, Header, OpCode};

/// The most a snappy stream can expand: its densest element, a copy with a 2-byte offset,
/// writes 64 bytes from 3.
#[cfg(feature = "snappy")]
const SNAPPY_MAX_RATIO: usize = 22;

/// A wire compressor, by the id it has in OP_COMPRESSED and the name used in the handshake and
/// the `compressors` URI option.
///
/// All variants exist whatever the cargo features; using one whose feature (`snappy`, `zlib`,
/// `zstd`) is off yields [`Error::CompressorNotEnabled`]. See [`Compressor::is_enabled`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Compressor {
    /// Id 0, `noop`: the payload is stored as is (for tests).
    Noop,
    /// Id 1, `snappy`.
    Snappy,
    /// Id 2, `zlib`, with an optional level 0-9 (`None` is zlib's default, `-1` in the URI).
    Zlib {
        /// Compression level 0-9, or `None` for the default.
        level: Option<u32>,
    },
    /// Id 3, `zstd` (default level).
    Zstd,
}

impl Compressor {
    /// zlib at its default level.
    pub const ZLIB: Self = Self::Zlib { level: None };

    /// zlib with a `zlibCompressionLevel` from -1 (default) to 9.
    ///
    /// # Errors
    /// [`Error::InvalidZlibLevel`] outside -1..=9.
    pub fn zlib_with_level(level: i32) -> Result<Self> {
        match level {
            -1 => Ok(Self::ZLIB),
            0..=9 => Ok(Self::Zlib {
                level: u32::try_from(level).ok(),
            }),
            other => Err(Error::InvalidZlibLevel(other)),
        }
    }

    /// The OP_COMPRESSED `compressorId`.
    #[must_use]
    pub const fn id(self) -> u8 {
        match self {
            Self::Noop => 0,
            Self::Snappy => 1,
            Self::Zlib { .. } => 2,
            Self::Zstd => 3,
        }
    }

    /// The compressor with this id (zlib at its default level).
    ///
    /// # Errors
    /// [`Error::UnknownCompressorId`] for ids 4-255.
    pub const fn from_id(id: u8) -> Result<Self> {
        match id {
            0 => Ok(Self::Noop),
            1 => Ok(Self::Snappy),
            2 => Ok(Self::ZLIB),
            3 => Ok(Self::Zstd),
            other => Err(Error::UnknownCompressorId(other)),
        }
    }

    /// The handshake name: `noop`, `snappy`, `zlib` or `zstd`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Noop => "noop",
            Self::Snappy => "snappy",
            Self::Zlib { .. } => "zlib",
            Self::Zstd => "zstd",
        }
    }

    /// True when this build can compress and decompress with it (its cargo feature is on).
    #[must_use]
    pub const fn is_enabled(self) -> bool {
        match self {
            Self::Noop => true,
            Self::Snappy => cfg!(feature = "snappy"),
            Self::Zlib { .. } => cfg!(feature = "zlib"),
            Self::Zstd => cfg!(feature = "zstd"),
        }
    }

    /// Compresses `input`, appending the result to `out`.
    ///
    /// # Errors
    /// [`Error::CompressorNotEnabled`] when the feature is off, [`Error::Compression`] if the
    /// library fails.
    pub fn compress(self, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        let start = out.len();
        let r = self.compress_inner(input, out);
        if r.is_err() {
            out.truncate(start);
        }
        r
    }

    fn compress_inner(self, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        match self {
            Self::Noop => {
                out.extend_from_slice(input);
                Ok(())
            }
            #[cfg(feature = "snappy")]
            Self::Snappy => {
                let start = out.len();
                out.resize(start + snap::raw::max_compress_len(input.len()), 0);
                let dst = out.get_mut(start..).unwrap_or_default();
                let n = snap::raw::Encoder::new()
                    .compress(input, dst)
                    .map_err(|e| self.compression_error(e))?;
                out.truncate(start + n);
                Ok(())
            }
            #[cfg(feature = "zlib")]
            Self::Zlib { level } => {
                use std::io::Write;
                let level = level.map_or(flate2::Compression::default(), flate2::Compression::new);
                let mut enc = flate2::write::ZlibEncoder::new(out, level);
                enc.write_all(input)
                    .map_err(|e| self.compression_error(e))?;
                enc.finish().map_err(|e| self.compression_error(e))?;
                Ok(())
            }
            #[cfg(feature = "zstd")]
            Self::Zstd => {
                let start = out.len();
                out.resize(start + zstd::zstd_safe::compress_bound(input.len()), 0);
                let dst = out.get_mut(start..).unwrap_or_default();
                let n = zstd::bulk::compress_to_buffer(input, dst, 0)
                    .map_err(|e| self.compression_error(e))?;
                out.truncate(start + n);
                Ok(())
            }
            #[allow(unreachable_patterns)]
            other => Err(Error::CompressorNotEnabled(other)),
        }
    }

    #[allow(dead_code)]
    fn compression_error(self, e: impl fmt::Display) -> Error {
        Error::Compression {
            compressor: self,
            message: e.to_string(),
        }
    }

    #[allow(dead_code)]
    fn decompression_error(self, e: impl fmt::Display) -> Error {
        Error::Decompression {
            compressor: self,
            message: e.to_string(),
        }
    }

    /// Decompresses `input`, which must expand to exactly `declared` bytes, appending them to
    /// `out`, and never produces more. zlib and zstd decompress as a stream: `out` grows with
    /// the output actually produced, not with `declared`; snappy (which needs its whole
    /// destination) refuses a `declared` size beyond its maximum expansion of `input` before
    /// allocating. The caller bounds `declared` (see [`OpCompressedRef::decompress_into`]).
    ///
    /// # Errors
    /// [`Error::DecompressedSizeMismatch`], [`Error::Decompression`],
    /// [`Error::CompressorNotEnabled`]. On error `out` is left as it was.
    pub fn decompress(self, input: &[u8], declared: usize, out: &mut Vec<u8>) -> Result<()> {
        let start = out.len();
        let r = self.decompress_inner(input, declared, out, start);
        if r.is_err() {
            out.truncate(start);
        }
        r
    }

    /// Reads the output of the streaming decompressor `dec` into `out` (from `start`), which
    /// must come to exactly `declared` bytes. `out` grows with the output actually produced
    /// (doubling from a small start), never by what `declared` claims: a lying header costs
    /// nothing until the bytes are really there.
    #[cfg(any(feature = "zlib", feature = "zstd"))]
    fn read_declared(
        self,
        dec: impl std::io::Read,
        declared: usize,
        out: &mut Vec<u8>,
        start: usize,
    ) -> Result<()> {
        use std::io::Read;
        let limit = u64::try_from(declared)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        dec.take(limit)
            .read_to_end(out)
            .map_err(|e| self.decompression_error(e))?;
        // Shorter or longer than declared (one byte past it is enough to know).
        if out.len() - start != declared {
            return Err(Error::DecompressedSizeMismatch { declared });
        }
        Ok(())
    }

    fn decompress_inner(
        self,
        input: &[u8],
        declared: usize,
        out: &mut Vec<u8>,
        start: usize,
    ) -> Result<()> {
        let mismatch = Error::DecompressedSizeMismatch { declared };
        match self {
            Self::Noop => {
                if input.len() != declared {
                    return Err(mismatch);
                }
                out.extend_from_slice(input);
                Ok(())
            }
            #[cfg(feature = "snappy")]
            Self::Snappy => {
                // The snappy preamble states the length: check it before allocating.
                let len =
                    snap::raw::decompress_len(input).map_err(|e| self.decompression_error(e))?;
                // A snappy element expands at most 64 bytes from 3 (a 2-byte-offset copy):
                // a declared size beyond that ratio is a lie, refused before allocating.
                if len != declared || declared > input.len().saturating_mul(SNAPPY_MAX_RATIO) {
                    return Err(mismatch);
                }
                out.resize(start + declared, 0);
                let dst = out.get_mut(start..).unwrap_or_default();
                let n = snap::raw::Decoder::new()
                    .decompress(input, dst)
                    .map_err(|e| self.decompression_error(e))?;
                if n != declared {
                    return Err(mismatch);
                }
                Ok(())
            }
            #[cfg(feature = "zlib")]
            Self::Zlib { .. } => {
                let dec = flate2::bufread::ZlibDecoder::new(input);
                self.read_declared(dec, declared, out, start)
            }
            #[cfg(feature = "zstd")]
            Self::Zstd => {
                let dec = zstd::stream::read::Decoder::with_buffer(input)
                    .map_err(|e| self.decompression_error(e))?
                    .single_frame();
                self.read_declared(dec, declared, out, start)
            }
            #[allow(unreachable_patterns)]
            other => {
                let _ = (start, mismatch);
                Err(Error::CompressorNotEnabled(other))
            }
        }
    }
}

impl fmt::Display for Compressor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Compressor {
    type Err = Error;

    /// Parses a handshake / URI name, ASCII case-insensitively (`zlib` at its default level).
    fn from_str(s: &str) -> Result<Self> {
        [Self::Noop, Self::Snappy, Self::ZLIB, Self::Zstd]
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| Error::UnknownCompressorName(s.to_owned()))
    }
}

/// Commands whose messages must never be compressed (the OP_COMPRESSED spec's list, plus both
/// spellings of legacy hello).
pub const UNCOMPRESSIBLE_COMMANDS: &[&str] = &[
    "hello",
    "isMaster",
    "saslStart",
    "saslContinue",
    "getnonce",
    "authenticate",
    "createUser",
    "updateUser",
    "copydbSaslStart",
    "copydbgetnonce",
    "copydb",
];

/// True when a message carrying `command_name` may be compressed. The comparison is ASCII
/// case-insensitive, so `ismaster`, `isMaster` and `ISMASTER` are all refused: when in doubt,
/// authentication-related traffic stays uncompressed.
#[must_use]
pub fn is_compressible(command_name: &str) -> bool {
    !UNCOMPRESSIBLE_COMMANDS
        .iter()
        .any(|c| c.eq_ignore_ascii_case(command_name))
}

/// Wraps an already encoded message (header included) in OP_COMPRESSED, appending the result to
/// `out`. The request id and responseTo are carried over from the original header.
///
/// # Errors
/// [`Error::NotCompressible`] if `message` is not a whole message or is already OP_COMPRESSED;
/// compression errors as for [`Compressor::compress`].
pub fn encode_compressed(message: &[u8], compressor: Compressor, out: &mut Vec<u8>) -> Result<()> {
    let header = Header::parse(message, usize::MAX)
        .map_err(|_| Error::NotCompressible("not a valid message header"))?;
    if header.op_code == OpCode::Compressed {
        return Err(Error::NotCompressible("already OP_COMPRESSED"));
    }
    let body = body_of(message, &header)
        .map_err(|_| Error::NotCompressible("length does not match its header"))?;
    let start = begin_message(out);
    put_i32(out, header.op_code.as_i32());
    let Ok(size) = i32::try_from(body.len()) else {
        out.truncate(start);
        return Err(Error::NotCompressible("message over i32::MAX"));
    };
    put_i32(out, size);
    out.push(compressor.id());
    if let Err(e) = compressor.compress(body, out) {
        out.truncate(start);
        return Err(e);
    }
    finish_message(
        out,
        start,
        0,
        header.request_id,
        header.response_to,
        OpCode::Compressed,
    )
}

/// A decoded OP_COMPRESSED, borrowing the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpCompressedRef<'a> {
    /// The header of the OP_COMPRESSED message itself.
    pub header: Header,
    /// The opcode of the wrapped message.
    pub original_op_code: OpCode,
    /// The declared size of the wrapped message without its header.
    pub uncompressed_size: usize,
    /// The compressor that produced the payload.
    pub compressor: Compressor,
    /// The compressed payload.
    pub compressed: &'a [u8],
}

impl<'a> OpCompressedRef<'a> {
    /// Decodes a whole OP_COMPRESSED frame (header included), without decompressing.
    ///
    /// # Errors
    /// Unknown original opcode, nested OP_COMPRESSED, negative size, unknown compressor id, or
    /// a declared size too small for the original opcode.
    pub fn decode(frame: &'a [u8]) -> Result<Self> {
        let (header, body) = split_frame(frame, OpCode::Compressed)?;
        let mut r = Reader::new(body);
        let original = OpCode::from_i32(r.i32("originalOpcode")?)?;
        if original == OpCode::Compressed {
            return Err(Error::NestedCompression);
        }
        let size = r.i32("uncompressedSize")?;
        let uncompressed_size = usize::try_from(size).map_err(|_| Error::InvalidLength {
            length: i64::from(size),
            reason: LengthProblem::Negative,
        })?;
        let minimum = original.min_message_len();
        if uncompressed_size.saturating_add(HEADER_LEN) < minimum {
            return Err(Error::InvalidLength {
                length: i64::from(size),
                reason: LengthProblem::TooSmall {
                    op_code: Some(original),
                    minimum: minimum - HEADER_LEN,
                },
            });
        }
        let compressor = Compressor::from_id(r.u8("compressorId")?)?;
        Ok(Self {
            header,
            original_op_code: original,
            uncompressed_size,
            compressor,
            compressed: r.rest(),
        })
    }

    /// Decompresses into `out` (cleared first) as a plain, uncompressed message: a header
    /// with the same requestID / responseTo, the original opcode and the new length, followed
    /// by the decompressed body.
    ///
    /// # Errors
    /// [`Error::UncompressedSizeTooLarge`] when the declared size, plus a header, exceeds
    /// `max_message_size` (checked before allocating); any [`Compressor::decompress`] error.
    pub fn decompress_into(&self, max_message_size: usize, out: &mut Vec<u8>) -> Result<()> {
        let max_body = max_message_size.saturating_sub(HEADER_LEN);
        if self.uncompressed_size > max_body {
            return Err(Error::UncompressedSizeTooLarge {
                declared: i64::try_from(self.uncompressed_size).unwrap_or(i64::MAX),
                max: max_body,
            });
        }
        out.clear();
        let start = begin_message(out);
        self.compressor
            .decompress(self.compressed, self.uncompressed_size, out)?;
        finish_message(
            out,
            start,
            0,
            self.header.request_id,
            self.header.response_to,
            self.original_op_code,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLAIM: usize = 40_000_000;

    /// A lying declared size costs no more memory than the output really produced.
    fn assert_lie_is_cheap(c: Compressor, input: &[u8]) {
        let mut out = Vec::new();
        let r = c.decompress(input, CLAIM, &mut out);
        assert!(r.is_err(), "{c}: {r:?}");
        assert!(
            out.capacity() < 1 << 20,
            "{c}: {} bytes allocated for a lie",
            out.capacity()
        );
    }

    #[test]
    fn declared_sizes_do_not_drive_allocation() {
        let data = vec![7u8; 1000];
        for c in [Compressor::ZLIB, Compressor::Zstd] {
            let mut compressed = Vec::new();
            c.compress(&data, &mut compressed).unwrap();
            assert_lie_is_cheap(c, &compressed);
            let mut out = Vec::new();
            c.decompress(&compressed, data.len(), &mut out).unwrap();
            assert_eq!(out, data, "{c}");
            // One byte short is a mismatch too.
            assert!(c.decompress(&compressed, data.len() + 1, &mut out).is_err());
        }
        // Snappy: a preamble claiming 40 MB in front of a few bytes.
        let mut lie = Vec::new();
        let mut n = CLAIM;
        while n >= 0x80 {
            lie.push(u8::try_from(n & 0x7f).unwrap() | 0x80);
            n >>= 7;
        }
        lie.push(u8::try_from(n).unwrap());
        lie.extend_from_slice(&[0, 1, 2, 3]);
        assert_lie_is_cheap(Compressor::Snappy, &lie);
        let mut compressed = Vec::new();
        Compressor::Snappy.compress(&data, &mut compressed).unwrap();
        let mut out = Vec::new();
        Compressor::Snappy
            .decompress(&compressed, data.len(), &mut out)
            .unwrap();
        assert_eq!(out, data);
    }
}
