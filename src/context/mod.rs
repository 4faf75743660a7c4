//! The request context: the typed request extensions one layer hands to the next, each with
//! public constructors, so a user's own layer (or a test) can build or read any of them
//! without the layer that usually writes it.
//!
//! | extension | what | written by | read by |
//! |---|---|---|---|
//! | [`Arc<ChatRequest>`](ChatRequest) | the parsed body | parse (alias, autoroute rewrite it) | every layer |
//! | [`RequestContext`] | id, arrival, upstream wait, attempts, credit hold | parse | fallback, meter, credits, translate, upstream |
//! | [`CallerKey`] | the gateway key | auth | credits, meter |
//! | [`Candidates`] | the ordered targets | route (balance reorders) | credits, fallback |
//! | [`Target`] | one attempt's endpoint | fallback, per attempt | meter, translate, upstream |
//! | [`NativeRequest`] | the client's body in a provider's own format | an ingress (Anthropic Messages) | translate, for an endpoint speaking that format |
//!
//! **The body always carries the request.** Where a layer changes the request (alias rewrites
//! `model`, fallback gives each attempt its endpoint), it also replaces the body with
//! [`ChatBody`], the same request as JSON, rendered only if something reads it. So a user's own
//! service anywhere in a stack receives the real request body, and the stack's own layers read
//! the parsed [`ChatRequest`] instead of parsing it again. A user layer that changes the body
//! itself removes the `Arc<ChatRequest>` extension (or replaces it), since a `ChatRequest`
//! present is taken as the request.
//!
//! A layer that needs the parsed request and finds no `ChatRequest` parses the body itself
//! (alias, route, fallback, meter: see each layer's contract), so they work alone.

mod body;
mod chat;
mod messages;
mod native;
mod parse_body;
mod prefs;
mod request;
mod target;
mod verbatim;

pub(crate) use body::parse_then_call;
pub use body::{ChatBody, DEFAULT_MAX_BODY_BYTES, FromChat, api_of_path, chat_of, set_chat};
pub use chat::{ApiKind, ChatRequest};
pub use native::NativeRequest;
pub use parse_body::parse_request;
pub use prefs::{AutoDecision, MaxPrice, ModelHints, ProviderPrefs, RoutingHints, SortPref};
pub use request::{Attempt, CallerKey, CreditSettle, GenerationId, RequestContext, UpstreamWait};
pub use target::{Candidates, Target};
pub use verbatim::Verbatim;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn deferred() -> ChatRequest {
        let body =
            br#"{"model":"a/b","messages":[{"role":"user","content":"hi"}],"temperature":1}"#;
        let chat =
            parse_body::parse_request(ApiKind::Chat, body, &Default::default()).expect("parses");
        assert!(
            chat.messages_deferred,
            "a plain conversation is only checked"
        );
        chat
    }

    #[test]
    fn deferred_messages_read_as_parsed_everywhere() {
        let chat = deferred();
        assert_eq!(chat.body()["messages"][0]["content"], "hi");
        assert_eq!(chat.field("messages"), chat.body().get("messages"));
        assert_eq!(chat.body()["temperature"], 1);
        assert!(chat.uses_parameter("messages"));
        assert_eq!(chat.prompt_chars, 2);
    }

    #[test]
    fn writing_a_deferred_body_keeps_messages() {
        // Another field: messages stay deferred, and the whole body sees the change.
        let mut chat = deferred();
        let _ = chat.body();
        chat.set_field("temperature", Value::from(0));
        assert!(chat.messages_deferred);
        assert_eq!(chat.body()["temperature"], 0);
        assert_eq!(chat.body()["messages"][0]["role"], "user");
        // `messages` itself: the new value, and the client's bytes are gone.
        chat.set_field(
            "messages",
            serde_json::json!([{"role": "user", "content": "new"}]),
        );
        assert!(!chat.messages_deferred);
        assert!(chat.verbatim_field("messages").is_none());
        assert_eq!(chat.body()["messages"][0]["content"], "new");
        // The whole body mutably: parsed in place first.
        let mut chat = deferred();
        chat.body_mut().insert("top_p".into(), Value::from(1));
        assert!(!chat.messages_deferred);
        assert_eq!(chat.fields["messages"][0]["content"], "hi");
        assert_eq!(chat.body()["top_p"], 1);
    }

    #[test]
    fn generation_ids_are_gen_seconds_and_20_alphanumerics() {
        let id = GenerationId::new();
        let mut parts = id.as_str().splitn(3, '-');
        assert_eq!(parts.next(), Some("gen"));
        let secs = parts.next().expect("seconds");
        assert!(
            secs.parse::<u64>().is_ok_and(|s| s > 1_600_000_000),
            "{id:?}"
        );
        let tail = parts.next().expect("random part");
        assert_eq!(tail.len(), 20);
        assert!(tail.bytes().all(|b| b.is_ascii_alphanumeric()), "{id:?}");
        assert_ne!(GenerationId::new(), id);
    }

    #[test]
    fn model_chain_drops_repeats_in_order() {
        let body = br#"{"model":"a/a","models":["b/b","a/a","c/c","b/b"],"messages":[{"role":"user","content":"x"}]}"#;
        let chat =
            parse_body::parse_request(ApiKind::Chat, body, &Default::default()).expect("parse");
        assert_eq!(chat.model_chain(), ["a/a", "b/b", "c/c"]);
        assert!(chat.model_chain_iter().eq(["a/a", "b/b", "c/c"]));
        let body = br#"{"models":["b/b","b/b"],"messages":[{"role":"user","content":"x"}]}"#;
        let chat =
            parse_body::parse_request(ApiKind::Chat, body, &Default::default()).expect("parse");
        assert_eq!(chat.model_chain(), ["b/b"]);
    }
}
