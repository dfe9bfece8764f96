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
    /// reply. Fields that are missing, not numeric or not positive keep their defaults.
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
