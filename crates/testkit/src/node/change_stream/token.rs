//! Resume tokens: `{_data: <hex>}` with a version byte, the entry's cluster time, its
//! sequence number in the replication log and a kind (a high-water mark, an event, or the
//! invalidate that follows an event). Fixed-width big-endian hex, so they sort as mongod's:
//! by cluster time, then position.

use bson::{Bson, Document, Timestamp, doc};

use crate::error::{CmdResult, CommandError};

/// InvalidResumeToken.
pub(super) const INVALID_RESUME_TOKEN: i32 = 260;

/// Where a token says a stream goes on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum TokenKind {
    /// Everything from `seq` on.
    HighWaterMark,
    /// After the event of entry `seq` (its invalidate, if it has one, is still to come).
    Event,
    /// After the invalidate that followed entry `seq`.
    Invalidate,
}

/// A decoded resume token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Token {
    pub(super) ts: Timestamp,
    pub(super) seq: u64,
    pub(super) kind: TokenKind,
}

impl Token {
    pub(super) fn to_doc(self) -> Document {
        let kind = match self.kind {
            TokenKind::HighWaterMark => 0u8,
            TokenKind::Event => 1,
            TokenKind::Invalidate => 2,
        };
        let data = format!(
            "82{:08X}{:08X}{:016X}{kind:02X}",
            self.ts.time, self.ts.increment, self.seq
        );
        doc! { "_data": data }
    }

    pub(super) fn parse(token: &Bson) -> CmdResult<Token> {
        let bad = || {
            CommandError::new(
                INVALID_RESUME_TOKEN,
                "InvalidResumeToken",
                format!("Bad resume token: {token}"),
            )
        };
        let data = match token {
            Bson::Document(d) => d.get_str("_data").map_err(|_| bad())?,
            _ => return Err(bad()),
        };
        if data.len() != 36 || !data.is_ascii() || !data.starts_with("82") {
            return Err(bad());
        }
        let hex = |range: std::ops::Range<usize>| {
            data.get(range)
                .and_then(|s| u64::from_str_radix(s, 16).ok())
                .ok_or_else(bad)
        };
        let time = u32::try_from(hex(2..10)?).map_err(|_| bad())?;
        let increment = u32::try_from(hex(10..18)?).map_err(|_| bad())?;
        let seq = hex(18..34)?;
        let kind = match hex(34..36)? {
            0 => TokenKind::HighWaterMark,
            1 => TokenKind::Event,
            2 => TokenKind::Invalidate,
            _ => return Err(bad()),
        };
        Ok(Token {
            ts: Timestamp { time, increment },
            seq,
            kind,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_sort() {
        let t = Token {
            ts: Timestamp {
                time: 7,
                increment: 3,
            },
            seq: 42,
            kind: TokenKind::Event,
        };
        let d = t.to_doc();
        assert_eq!(Token::parse(&Bson::Document(d.clone())).unwrap(), t);
        let later = Token { seq: 43, ..t }.to_doc();
        assert!(d.get_str("_data").unwrap() < later.get_str("_data").unwrap());
        for bad in [
            Bson::Int32(1),
            Bson::Document(doc! { "_data": "zz" }),
            Bson::Document(doc! { "_data": "8200000007000000030000000000000002AFF" }),
        ] {
            assert_eq!(Token::parse(&bad).unwrap_err().code, INVALID_RESUME_TOKEN);
        }
    }
}
