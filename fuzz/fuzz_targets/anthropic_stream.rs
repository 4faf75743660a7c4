//! Fuzz target for the Anthropic stream translator (planned API; not built until the module exists —
//! see the commented `[[bin]]` in `fuzz/Cargo.toml`). Any event sequence either maps to OpenAI
//! chunk objects or fails with an `UpstreamError`; it never panics.
#![no_main]

use switchyard::sse::Decoder;
use switchyard::translate::anthropic::StreamTranslator;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut events = Vec::new();
    Decoder::default().feed(data, &mut events);
    let mut translator = StreamTranslator::new();
    let mut out = Vec::new();
    for ev in &events {
        if translator.on_event(ev.event.as_deref(), &ev.data, &mut out).is_err() {
            break;
        }
    }
    for chunk in &out {
        assert!(chunk.is_object(), "a translated chunk is a JSON object: {chunk}");
    }
});
