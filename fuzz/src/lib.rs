//! The fuzz targets' bodies, shared by the libFuzzer binaries (`fuzz_targets/`) and the stable
//! random-input loop (`examples/stable_smoke.rs`). Each checks properties beyond "no panic".

use http::HeaderMap;
use std::path::Path;
use switchyard::context::ApiKind;
use switchyard::sse::{Decoder, Event};

/// Request parsing: any bytes give a typed request or an error naming the cause; an accepted
/// body re-serialised parses to the same request.
pub fn parse_request(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let kind = if selector & 1 == 0 {
        ApiKind::Chat
    } else {
        ApiKind::Completions
    };
    let mut headers = HeaderMap::new();
    if selector & 2 != 0 {
        headers.insert(
            "x-openrouter-metadata",
            http::HeaderValue::from_static("enabled"),
        );
    }
    match switchyard::context::parse_request(kind, body, &headers) {
        Ok(req) => {
            let again = serde_json::to_vec(&req.body).expect("a parsed body serialises");
            let req2 = switchyard::context::parse_request(kind, &again, &headers)
                .expect("a re-serialised accepted body is accepted");
            assert_eq!(req.model, req2.model);
            assert_eq!(req.models, req2.models);
            assert_eq!(req.stream, req2.stream);
            assert_eq!(req.max_tokens, req2.max_tokens);
            assert!(req.model.is_some() || !req.models.is_empty());
        }
        Err(e) => {
            assert!(e.status.is_client_error(), "{e}");
            assert!(!e.message.is_empty());
        }
    }
}

fn decode(pieces: &[&[u8]]) -> Vec<Event> {
    let mut d = Decoder::default();
    let mut out = Vec::new();
    for p in pieces {
        d.feed(p, &mut out);
    }
    out
}

/// The SSE decoder: any bytes, split anywhere (the first two bytes choose the cuts), give the
/// same events as the whole; a size limit flags instead of growing.
pub fn sse_decoder(data: &[u8]) {
    if data.len() < 2 {
        decode(&[data]);
        return;
    }
    let (cuts, stream) = data.split_at(2);
    let whole = decode(&[stream]);
    let a = usize::from(cuts[0]) % (stream.len() + 1);
    let b = (a + usize::from(cuts[1])) % (stream.len() + 1);
    let (a, b) = (a.min(b), a.max(b));
    let split = decode(&[&stream[..a], &stream[a..b], &stream[b..]]);
    assert_eq!(whole, split, "splitting at {a} and {b} changed the events");
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(
        whole,
        decode(&bytes),
        "byte-by-byte feeding changed the events"
    );
    for ev in &whole {
        assert!(!ev.data.contains('\r'), "a line ending leaked into data");
    }
    let mut limited = Decoder::with_limit(64);
    let mut out = Vec::new();
    limited.feed(stream, &mut out);
    if !limited.overflowed() {
        assert_eq!(out, whole, "the limit changed events it did not flag");
    }
}

/// The config parser: any text parses or fails with a located error; a parsed config builds
/// a catalogue or fails the same way, never panicking.
pub fn config_parse(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("fuzz.toml");
    match switchyard::catalog::Config::parse(path, text) {
        Ok(cfg) => {
            // The embedded default catalogue is the same every time: skip re-reading it.
            if cfg.providers.is_empty() || cfg.catalog.include_default == Some(true) {
                return;
            }
            let base = Path::new("/nonexistent-switchyard-fuzz");
            if let Ok(catalog) =
                switchyard::catalog::Catalog::from_config_with_env(&cfg, base, &|_| {
                    Some("k".to_owned())
                })
            {
                for m in catalog.models() {
                    assert!(catalog.model(&m.slug).is_some());
                }
            }
        }
        Err(e) => {
            assert!(
                e.to_string().contains("fuzz.toml"),
                "errors name the file: {e}"
            );
        }
    }
}

/// Feeds SSE bytes through a stream translator: every event either maps to JSON chunk objects or
/// fails with an error; it never panics.
fn translate_stream(data: &[u8], mut on_event: impl FnMut(Option<&str>, &str, &mut Vec<serde_json::Value>) -> bool) {
    let mut events = Vec::new();
    switchyard::sse::Decoder::default().feed(data, &mut events);
    let mut out = Vec::new();
    for ev in &events {
        if !on_event(ev.event.as_deref(), &ev.data, &mut out) {
            break;
        }
    }
    for chunk in &out {
        assert!(chunk.is_object(), "a translated chunk is a JSON object: {chunk}");
    }
}

/// The Anthropic Messages stream translator.
pub fn anthropic_stream(data: &[u8]) {
    let mut t = switchyard::translate::anthropic::StreamTranslator::new();
    translate_stream(data, |event, d, out| t.on_event(event, d, out).is_ok());
}

/// The Gemini stream translator.
pub fn gemini_stream(data: &[u8]) {
    let mut t = switchyard::translate::gemini::StreamTranslator::new();
    translate_stream(data, |event, d, out| t.on_event(event, d, out).is_ok());
}
