//! Fuzz target: a configuration file's text, parsed and checked as
//! `baton serve` does (`baton::check_config`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = baton::check_config(text);
    }
});
