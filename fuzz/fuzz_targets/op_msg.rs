//! libFuzzer target: `mongo_fuzz::op_msg` on arbitrary bytes (built by `cargo xtask fuzz`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mongo_fuzz::op_msg(data);
});
