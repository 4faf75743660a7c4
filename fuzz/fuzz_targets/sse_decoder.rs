//! Fuzz target: see `switchyard_fuzz::sse_decoder`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchyard_fuzz::sse_decoder(data));
