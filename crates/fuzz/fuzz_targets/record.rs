//! Fuzz target: see `baton_testkit::fuzz::record`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| baton_testkit::fuzz::record(data));
