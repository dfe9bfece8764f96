//! Fuzz target: `mongo_wire::fuzzing::query_reply` on arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mongo_wire::fuzzing::query_reply(data);
});
