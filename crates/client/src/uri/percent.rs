//! The connection string's percent-decoding, with its errors: the decoder itself is
//! [`mongo_events::percent`], which [`ServerAddress::parse`](crate::ServerAddress::parse) uses
//! for hosts too.

pub(crate) use mongo_events::percent::is_well_formed;

use super::UriError;

/// Decodes `%XX` escapes. Malformed escapes and results that are not UTF-8 are errors naming
/// `component` (never the text itself, which may be a password).
pub(crate) fn decode(input: &str, component: &'static str) -> Result<String, UriError> {
    mongo_events::percent::decode(input).ok_or(UriError::InvalidPercentEncoding(component))
}
