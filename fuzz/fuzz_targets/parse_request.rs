//! Fuzz target: see `switchyard_fuzz::parse_request`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchyard_fuzz::parse_request(data));
