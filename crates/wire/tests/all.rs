//! Integration tests of `mongo-wire`, in one binary: hand-computed golden bytes, error cases,
//! batch splitting, proptest round trips, a bounded random-input run of the fuzz entry points
//! and (feature `tokio`) the async reader and writer.

#![allow(missing_docs)]

#[path = "all/errors.rs"]
mod errors;
#[path = "all/fuzz_loop.rs"]
mod fuzz_loop;
#[path = "all/golden.rs"]
mod golden;
#[path = "all/props.rs"]
mod props;
#[cfg(feature = "tokio")]
#[path = "all/tokio_io.rs"]
mod tokio_io;

/// Parses hex with arbitrary whitespace.
pub(crate) fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len() % 2 == 0, "odd hex length");
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}
