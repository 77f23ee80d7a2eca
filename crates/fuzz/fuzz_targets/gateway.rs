//! Fuzz target: see `baton_bridge::fuzz::request` (the gateway request
//! model never accepts a request whose readings differ from what it judged).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| baton_bridge::fuzz::request(data));
