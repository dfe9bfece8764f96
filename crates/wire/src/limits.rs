//! Server size limits and their defaults.
//!
//! The defaults are what servers have reported for years; the real values come from the
//! connection's hello reply ([`SizeLimits::from_hello`]).

use bson::RawDocument;

/// Default `maxBsonObjectSize`: 16 MiB.
pub const DEFAULT_MAX_BSON_OBJECT_SIZE: usize = 16 * 1024 * 1024;
/// Default `maxMessageSizeBytes`: 48,000,000.
pub const DEFAULT_MAX_MESSAGE_SIZE_BYTES: usize = 48_000_000;
/// Default `maxWriteBatchSize`: 100,000.
pub const DEFAULT_MAX_WRITE_BATCH_SIZE: usize = 100_000;
/// Allowance over `maxBsonObjectSize` that the server grants a command document for the
/// command's own fields (16 KiB).
pub const COMMAND_OVERHEAD: usize = 16 * 1024;
/// The most a reader adds to its buffer ahead of the bytes that arrived (1 MiB): whatever
/// length a message header claims, memory follows the bytes that actually arrive.
pub const READ_STEP: usize = 1 << 20;
/// The largest `maxBsonObjectSize` a server's hello may raise the limit to (64 MiB, four times
/// what every server reports): a larger claim is clamped to it.
pub const MAX_ACCEPTED_BSON_OBJECT_SIZE: usize = 4 * DEFAULT_MAX_BSON_OBJECT_SIZE;
/// The largest `maxMessageSizeBytes` a server's hello may raise the limit to (192,000,000,
/// four times what every server reports): a larger claim is clamped to it, so that a hostile
/// or broken server cannot make the client accept (or buffer) gigabyte messages.
pub const MAX_ACCEPTED_MESSAGE_SIZE_BYTES: usize = 4 * DEFAULT_MAX_MESSAGE_SIZE_BYTES;
/// The largest `maxWriteBatchSize` a server's hello may raise the limit to (1,000,000).
pub const MAX_ACCEPTED_WRITE_BATCH_SIZE: usize = 10 * DEFAULT_MAX_WRITE_BATCH_SIZE;

/// The three limits that bound what a client may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeLimits {
    /// Largest BSON document the server accepts.
    pub max_bson_object_size: usize,
    /// Largest message the server accepts (and sends).
    pub max_message_size_bytes: usize,
    /// Largest number of writes in one write command.
    pub max_write_batch_size: usize,
}

impl Default for SizeLimits {
    fn default() -> Self {
        Self {
            max_bson_object_size: DEFAULT_MAX_BSON_OBJECT_SIZE,
            max_message_size_bytes: DEFAULT_MAX_MESSAGE_SIZE_BYTES,
            max_write_batch_size: DEFAULT_MAX_WRITE_BATCH_SIZE,
        }
    }
}

impl SizeLimits {
    /// Reads `maxBsonObjectSize`, `maxMessageSizeBytes` and `maxWriteBatchSize` from a hello
    /// reply. Fields that are missing, not numeric or not positive keep their defaults; values
    /// above the `MAX_ACCEPTED_*` limits are clamped to them ([`SizeLimits::clamped`]).
    #[must_use]
    pub fn from_hello(hello: &RawDocument) -> Self {
        let d = Self::default();
        Self {
            max_bson_object_size: read_positive(hello, "maxBsonObjectSize")
                .unwrap_or(d.max_bson_object_size),
            max_message_size_bytes: read_positive(hello, "maxMessageSizeBytes")
                .unwrap_or(d.max_message_size_bytes),
            max_write_batch_size: read_positive(hello, "maxWriteBatchSize")
                .unwrap_or(d.max_write_batch_size),
        }
        .clamped()
    }

    /// These limits with each one clamped to what the client accepts from a server
    /// ([`MAX_ACCEPTED_BSON_OBJECT_SIZE`], [`MAX_ACCEPTED_MESSAGE_SIZE_BYTES`],
    /// [`MAX_ACCEPTED_WRITE_BATCH_SIZE`]); a zero limit becomes its default.
    #[must_use]
    pub fn clamped(self) -> Self {
        let d = Self::default();
        let clamp = |v: usize, default: usize, max: usize| {
            if v == 0 { default } else { v.min(max) }
        };
        Self {
            max_bson_object_size: clamp(
                self.max_bson_object_size,
                d.max_bson_object_size,
                MAX_ACCEPTED_BSON_OBJECT_SIZE,
            ),
            max_message_size_bytes: clamp(
                self.max_message_size_bytes,
                d.max_message_size_bytes,
                MAX_ACCEPTED_MESSAGE_SIZE_BYTES,
            ),
            max_write_batch_size: clamp(
                self.max_write_batch_size,
                d.max_write_batch_size,
                MAX_ACCEPTED_WRITE_BATCH_SIZE,
            ),
        }
    }
}

fn read_positive(doc: &RawDocument, key: &str) -> Option<usize> {
    let value = doc.get(key).ok().flatten()?;
    let n = match value {
        bson::RawBsonRef::Int32(v) => i64::from(v),
        bson::RawBsonRef::Int64(v) => v,
        bson::RawBsonRef::Double(v) if v.is_finite() && v.fract() == 0.0 && v >= 1.0 => {
            // Exact for the sizes servers report; anything beyond i64 is rejected below.
            format!("{v:.0}").parse::<i64>().ok()?
        }
        _ => return None,
    };
    usize::try_from(n).ok().filter(|n| *n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::rawdoc;

    #[test]
    fn absurd_limits_from_a_hello_are_clamped() {
        let hello = rawdoc! {
            "maxBsonObjectSize": i64::MAX,
            "maxMessageSizeBytes": 1_i64 << 40,
            "maxWriteBatchSize": 1_000_000_000_i64,
        };
        let l = SizeLimits::from_hello(&hello);
        assert_eq!(l.max_bson_object_size, MAX_ACCEPTED_BSON_OBJECT_SIZE);
        assert_eq!(l.max_message_size_bytes, MAX_ACCEPTED_MESSAGE_SIZE_BYTES);
        assert_eq!(l.max_write_batch_size, MAX_ACCEPTED_WRITE_BATCH_SIZE);
        let real = rawdoc! {
            "maxBsonObjectSize": 16_777_216,
            "maxMessageSizeBytes": 48_000_000,
            "maxWriteBatchSize": 100_000,
        };
        assert_eq!(SizeLimits::from_hello(&real), SizeLimits::default());
    }
}
