//! Fuzz target: `mongo_wire::fuzzing::op_msg` on arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mongo_wire::fuzzing::op_msg(data);
});
