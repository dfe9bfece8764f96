//! libFuzzer target: `mongo_fuzz::hello_description` on arbitrary bytes (built by `cargo xtask fuzz`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mongo_fuzz::hello_description(data);
});
