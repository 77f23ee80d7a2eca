//! Fuzz target: see `baton_testkit::fuzz::bundle`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| baton_testkit::fuzz::bundle(data));
