//! Fuzz target: `mongo_wire::fuzzing::compressed` on arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mongo_wire::fuzzing::compressed(data);
});
