//! Fuzz target for the Anthropic stream translator: any event sequence either maps to OpenAI chunk
//! objects or fails with an error; it never panics.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchyard_fuzz::anthropic_stream(data));
