//! Fuzz target: see `baton_testkit::fuzz::embedded_log`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| baton_testkit::fuzz::embedded_log(data));
