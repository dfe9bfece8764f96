//! Collations: how strings compare when a command carries `collation`. The `simple` locale
//! (or no collation) compares UTF-8 bytes; any other locale compares the way ICU's root
//! collation does for Latin text, level by level:
//!
//! - primary: base letters (case folded, diacritics removed — NFD, combining marks dropped),
//!   digit runs as numbers when `numericOrdering` is set;
//! - secondary: diacritics;
//! - tertiary: case, lower case first unless `caseFirst: "upper"`.
//!
//! `strength` (1–5, default 3) says how many levels count; `caseLevel` adds the case level
//! to strength 1 or 2. Strengths 4 and 5 also tell apart strings that differ in any other way.
//! This is an approximation of ICU: punctuation and scripts other than Latin sort by code
//! point, not by the locale's tables; `alternate`, `maxVariable`, `backwards` and
//! `normalization` are accepted and not applied.

use std::cmp::Ordering;

use bson::{Bson, Document};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use crate::error::{CmdResult, CommandError};

/// A non-simple collation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Collation {
    strength: u8,
    case_level: bool,
    upper_first: bool,
    numeric: bool,
}

impl Collation {
    /// Parses a command's `collation` document; `None` for the simple collation.
    pub(crate) fn parse(spec: &Document) -> CmdResult<Option<Collation>> {
        let mut locale = None;
        let mut c = Collation {
            strength: 3,
            case_level: false,
            upper_first: false,
            numeric: false,
        };
        for (k, v) in spec {
            match (k.as_str(), v) {
                ("locale", Bson::String(l)) => locale = Some(l.as_str()),
                ("strength", v) => {
                    c.strength = super::compare::as_int(v)
                        .and_then(|n| u8::try_from(n).ok())
                        .filter(|n| (1..=5).contains(n))
                        .ok_or_else(|| {
                            CommandError::failed_to_parse(
                                "Field 'strength' must be an integer 1 through 5",
                            )
                        })?;
                }
                ("caseLevel", Bson::Boolean(b)) => c.case_level = *b,
                ("numericOrdering", Bson::Boolean(b)) => c.numeric = *b,
                ("caseFirst", Bson::String(s)) => match s.as_str() {
                    "upper" => c.upper_first = true,
                    "lower" | "off" => c.upper_first = false,
                    other => {
                        return Err(CommandError::failed_to_parse(format!(
                            "Field 'caseFirst' must be 'upper', 'lower' or 'off', got '{other}'"
                        )));
                    }
                },
                ("alternate" | "maxVariable", Bson::String(_))
                | ("backwards" | "normalization", Bson::Boolean(_))
                | ("version", Bson::String(_)) => {}
                (
                    "locale" | "caseLevel" | "numericOrdering" | "caseFirst" | "alternate"
                    | "maxVariable" | "backwards" | "normalization" | "version",
                    _,
                ) => {
                    return Err(CommandError::type_mismatch(format!(
                        "BSON field 'collation.{k}' has the wrong type"
                    )));
                }
                (other, _) => {
                    return Err(CommandError::new(
                        40415,
                        "Location40415",
                        format!("BSON field 'collation.{other}' is an unknown field."),
                    ));
                }
            }
        }
        match locale {
            None => Err(CommandError::new(
                40414,
                "Location40414",
                "BSON field 'collation.locale' is missing but a required field",
            )),
            Some("simple") => Ok(None),
            Some(_) => Ok(Some(c)),
        }
    }

    /// Compares two strings under this collation.
    pub(crate) fn compare(&self, a: &str, b: &str) -> Ordering {
        let (a, b) = if self.numeric {
            (strip_leading_zeros(a), strip_leading_zeros(b))
        } else {
            (a.to_owned(), b.to_owned())
        };
        let (a, b) = (a.as_str(), b.as_str());
        let (pa, pb) = (self.primary(a), self.primary(b));
        let mut o = pa.cmp(&pb);
        if o == Ordering::Equal && self.strength >= 2 {
            o = secondary(a).cmp(&secondary(b));
        }
        if o == Ordering::Equal && (self.strength >= 3 || self.case_level) {
            o = self.tertiary(a).cmp(&self.tertiary(b));
        }
        if o == Ordering::Equal && self.strength >= 4 {
            o = a.nfd().cmp(b.nfd());
        }
        o
    }

    /// Base letters: NFD, combining marks dropped, lower case; with `numericOrdering`, a
    /// run of digits is one number.
    fn primary(&self, s: &str) -> Vec<Unit> {
        let mut out = Vec::new();
        let mut digits = String::new();
        for ch in s.nfd().filter(|c| !is_combining_mark(*c)) {
            if self.numeric && ch.is_ascii_digit() {
                digits.push(ch);
                continue;
            }
            flush_number(&mut digits, &mut out);
            out.extend(ch.to_lowercase().map(Unit::Char));
        }
        flush_number(&mut digits, &mut out);
        out
    }

    /// The case of each letter: 0 for the first case, 1 for the other.
    fn tertiary(&self, s: &str) -> Vec<u8> {
        s.nfd()
            .filter(|c| !is_combining_mark(*c))
            .map(|c| u8::from(c.is_uppercase() != self.upper_first))
            .collect()
    }
}

/// `s` with the leading zeros of each run of digits removed (`numericOrdering`: `a010` is
/// `a10`).
fn strip_leading_zeros(s: &str) -> String {
    fn flush(run: &mut String, out: &mut String) {
        if !run.is_empty() {
            let trimmed = run.trim_start_matches('0');
            out.push_str(if trimmed.is_empty() { "0" } else { trimmed });
            run.clear();
        }
    }
    let mut out = String::with_capacity(s.len());
    let mut run = String::new();
    for ch in s.chars() {
        if ch.is_ascii_digit() {
            run.push(ch);
        } else {
            flush(&mut run, &mut out);
            out.push(ch);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// The diacritics, per base letter (lower-cased NFD, marks kept).
fn secondary(s: &str) -> Vec<char> {
    s.nfd().flat_map(char::to_lowercase).collect()
}

/// One primary unit: a letter, or a number (digits without leading zeros: shorter is less).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Unit {
    Number(usize, String),
    Char(char),
}

fn flush_number(digits: &mut String, out: &mut Vec<Unit>) {
    if digits.is_empty() {
        return;
    }
    let trimmed = digits.trim_start_matches('0');
    let trimmed = if trimmed.is_empty() { "0" } else { trimmed };
    out.push(Unit::Number(trimmed.len(), trimmed.to_owned()));
    digits.clear();
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn coll(spec: Document) -> Collation {
        Collation::parse(&spec).unwrap().unwrap()
    }

    #[test]
    fn strength_levels() {
        let s1 = coll(doc! { "locale": "en_US", "strength": 1 });
        let s2 = coll(doc! { "locale": "en_US", "strength": 2 });
        let s3 = coll(doc! { "locale": "en_US" });
        assert_eq!(s2.compare("ping", "PING"), Ordering::Equal);
        assert_eq!(s2.compare("pINg", "PING"), Ordering::Equal);
        assert_ne!(s2.compare("café", "cafe"), Ordering::Equal);
        assert_eq!(s1.compare("café", "CAFE"), Ordering::Equal);
        assert_ne!(s3.compare("ping", "PING"), Ordering::Equal);
        // Lower case first at the tertiary level, but letters before case.
        assert_eq!(s3.compare("ping", "PING"), Ordering::Less);
        assert_eq!(s3.compare("Apple", "banana"), Ordering::Less);
        let upper = coll(doc! { "locale": "en", "caseFirst": "upper" });
        assert_eq!(upper.compare("ping", "PING"), Ordering::Greater);
        let case_level = coll(doc! { "locale": "en", "strength": 1, "caseLevel": true });
        assert_ne!(case_level.compare("a", "A"), Ordering::Equal);
        assert_eq!(case_level.compare("á", "a"), Ordering::Equal);
    }

    #[test]
    fn numeric_ordering_and_parsing() {
        let n = coll(doc! { "locale": "en", "numericOrdering": true });
        assert_eq!(n.compare("a10", "a9"), Ordering::Greater);
        assert_eq!(n.compare("a010", "a10"), Ordering::Equal);
        let plain = coll(doc! { "locale": "en" });
        assert_eq!(plain.compare("a10", "a9"), Ordering::Less);
        assert_eq!(
            Collation::parse(&doc! { "locale": "simple" }).unwrap(),
            None
        );
        assert!(Collation::parse(&doc! { "strength": 2 }).is_err());
        assert!(Collation::parse(&doc! { "locale": "en", "strength": 9 }).is_err());
        assert!(Collation::parse(&doc! { "locale": "en", "bogus": 1 }).is_err());
    }
}
