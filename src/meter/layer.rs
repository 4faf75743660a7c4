//! The meter service: prices every served attempt and records its generation.

use super::Prices;
use super::accounting::{Accounting, OnRecord, Shared};
use super::report::UsageReport;
use super::stream::MeterStream;
use super::usage::Usage;
use crate::BoxError;
use crate::body::{self as b, Body, call_boxed};
use crate::context::{CallerKey, ChatRequest, FromChat, RequestContext, Target, chat_of};
use crate::deferred_json::{DeferredJson, FirstChoice};
use crate::error::{GatewayError, MissingInput};
use crate::ledger::{AttemptRecord, GenerationRecord, Ingress, MeterSink, now_ms};
use futures_util::TryFutureExt;
use futures_util::future::BoxFuture;
use http::{Request, Response, header};
use serde_json::Value;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tower::{Layer, Service};

/// Applies [`Meter`].
#[derive(Debug, Clone, Default)]
pub struct MeterLayer {
    /// One `Arc` for both: every request's [`Accounting`] holds it, one count to bump.
    shared: Arc<Shared>,
}

impl MeterLayer {
    /// Metering without a ledger: cost is still written into every response.
    pub fn new() -> Self {
        MeterLayer::default()
    }

    /// Records every generation into `sink`.
    pub fn sink(mut self, sink: Arc<dyn MeterSink>) -> Self {
        Arc::make_mut(&mut self.shared).sink = Some(sink);
        self
    }

    /// Reports time-to-first-token and tokens per second of every stream to `health`.
    pub fn health(mut self, health: Arc<crate::health::Health>) -> Self {
        Arc::make_mut(&mut self.shared).health = Some(health);
        self
    }

    /// Calls `f` with every generation record, as it is finished (before any sink stores it).
    pub fn on_record(mut self, f: impl Fn(&GenerationRecord) + Send + Sync + 'static) -> Self {
        Arc::make_mut(&mut self.shared).on_record = Some(OnRecord(Arc::new(f)));
        self
    }

    /// Holds the end of every answer (a JSON response; a stream's usage chunk and `[DONE]`)
    /// until the sink says its generation record is committed, at most `bound`: a process
    /// killed after answering then loses no row of what it answered. Past the bound (the
    /// ledger's store down) the answer goes out anyway, with a warning, and the record stays
    /// queued for retry. With a sink that cannot tell (memory, your own without
    /// [`MeterSink::record_committed`]) nothing waits. Needs a Tokio runtime with timers.
    pub fn commit_before_answer(mut self, bound: Duration) -> Self {
        Arc::make_mut(&mut self.shared).commit_wait = Some(bound);
        self
    }

    /// Prices requests that carry no [`Target`] (no fallback layer in front): the meter used
    /// alone over your own upstream. Without these, such a request is refused.
    pub fn prices(mut self, prices: Prices) -> Self {
        Arc::make_mut(&mut self.shared).prices = Some(prices);
        self
    }
}

impl<S> Layer<S> for MeterLayer {
    type Service = Meter<S>;
    fn layer(&self, inner: S) -> Meter<S> {
        Meter {
            inner,
            config: self.clone(),
        }
    }
}

/// The meter service; see the [module docs](super).
#[derive(Debug, Clone)]
pub struct Meter<S> {
    inner: S,
    config: MeterLayer,
}

impl<S, B> Service<Request<B>> for Meter<S>
where
    S: Service<Request<B>, Response = Response<Body>> + Clone + Send + 'static,
    S::Error: Into<BoxError> + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = bytes::Bytes> + FromChat + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Response<Body>, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if req.extensions().get::<Arc<ChatRequest>>().is_some() {
            // Behind a parse layer: accounted at once, the inner service called as it is.
            let accounting = match accounting_for(&req, &self.config) {
                Ok(acc) => acc,
                Err(e) => return Box::pin(std::future::ready(Err(e))),
            };
            // A combinator, not an async block holding the inner future: one box, not two.
            return Box::pin(
                self.inner
                    .call(req)
                    .map_err(Into::into)
                    .and_then(move |resp| metered(resp, accounting)),
            );
        }
        // Alone: the request is read here first.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let config = self.config.clone();
        Box::pin(async move {
            let (req, _) = chat_of(req, crate::context::DEFAULT_MAX_BODY_BYTES).await?;
            let accounting = accounting_for(&req, &config)?;
            let fut = match std::future::poll_fn(|cx| inner.poll_ready(cx)).await {
                Ok(()) => call_boxed(&mut inner, req),
                Err(e) => return Err(e.into()),
            };
            metered(fut.await?, accounting).await
        })
    }
}

/// Prices a response: usage into the JSON, or a usage chunk into the stream.
async fn metered(resp: Response<Body>, mut acc: Accounting) -> Result<Response<Body>, BoxError> {
    if !resp.status().is_success() {
        // Nothing was served: the hold is released when the context goes.
        return Ok(resp);
    }
    acc.record.latency_ms = acc.started.elapsed().as_millis() as u64;
    // The request's `stream`, as the record took it.
    if acc.record.streamed {
        let (parts, body) = crate::sse::ensure_event_frames(resp).into_parts();
        return Ok(Response::from_parts(
            parts,
            b::boxed_as_is(MeterStream::new(body, acc)),
        ));
    }
    let (mut parts, body) = resp.into_parts();
    // The translator's body, when it answered: read (spliced bytes through a small
    // probe, else the parsed value), `usage` set in place, serialised once.
    if let Some(json) = parts.extensions.get::<DeferredJson>() {
        let facts = json
            .read_spliced_usage(Facts::noted)
            .or_else(|| json.read_spliced(Facts::probe))
            .or_else(|| json.edit(|v| Facts::of(v)));
        if let Some(facts) = facts {
            json.set_raw("usage", facts.settle(&mut acc).to_json());
            committed(&mut acc).await;
            return Ok(Response::from_parts(parts, body));
        }
    }
    let bytes = crate::body::read_limited(body, crate::body::MAX_RESPONSE_BYTES).await?;
    let mut v = match serde_json::from_slice::<Value>(&bytes) {
        Ok(v) if v.is_object() => v,
        // A 200 that is not a completion cannot be priced, and is not passed on as if it were
        // one that cost nothing.
        _ => {
            return Err(GatewayError::new(
                http::StatusCode::BAD_GATEWAY,
                "provider_unavailable",
                "meter: the upstream answered 200 with a body that is not a JSON completion",
            )
            .with_metadata(
                "raw",
                String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]).into_owned(),
            )
            .into());
        }
    };
    let report = Facts::of(&v).settle(&mut acc);
    v["usage"] = serde_json::to_value(report)?;
    committed(&mut acc).await;
    parts.headers.remove(header::CONTENT_LENGTH);
    Ok(Response::from_parts(
        parts,
        b::full(serde_json::to_vec(&v)?),
    ))
}

/// Waits for the record's commit when the answer is to wait for it (a JSON answer goes out
/// whole, so all of it waits).
async fn committed(acc: &mut Accounting) {
    if let Some(wait) = acc.commit.take() {
        wait.await;
    }
}

/// What pricing a non-streaming completion reads of it.
#[derive(Debug)]
struct Facts {
    finish: Option<String>,
    native: Option<String>,
    /// Generated characters, for the estimate when the upstream sent no usage.
    completion_chars: u64,
    usage: Option<Usage>,
}

impl Facts {
    /// From a parsed completion.
    fn of(v: &Value) -> Facts {
        let choice = &v["choices"][0];
        // An embeddings list has no completion and no finish: all it produced is there, so
        // zero-completion insurance (a completion that stopped before it began) is not for it.
        let embeddings = v["object"] == "list" && v["data"].is_array();
        Facts {
            finish: choice["finish_reason"]
                .as_str()
                .or(embeddings.then_some("stop"))
                .map(str::to_owned),
            native: choice["native_finish_reason"].as_str().map(str::to_owned),
            completion_chars: text_chars(choice),
            usage: v.get("usage").and_then(Usage::from_openai),
        }
    }

    /// From what the splicer noted of the first choice and the upstream's `usage` text: no
    /// second pass over the response. `None` without a usable `usage` (the generated
    /// characters are then needed for the estimate, which [`Facts::probe`] counts).
    /// The reasons are taken, not copied: the record owns them from here.
    fn noted(first: &mut FirstChoice, usage: &[u8]) -> Option<Facts> {
        let usage = Usage::from_openai_json(std::str::from_utf8(usage).ok()?).ok()??;
        Some(Facts {
            finish: first.finish.take(),
            native: first.native.take(),
            completion_chars: 0,
            usage: Some(usage),
        })
    }

    /// From a completion's JSON without parsing it into a `Value` (not even `usage`);
    /// `None` for a shape the probe does not read, which [`Facts::of`] then handles.
    fn probe(json: &[u8]) -> Option<Facts> {
        let p: probe::Response<'_> = serde_json::from_slice(json).ok()?;
        let usage = match p.usage {
            Some(raw) => Usage::from_openai_json(raw.get()).ok()?,
            None => None,
        };
        let Some(c) = p.choices.first() else {
            return Some(Facts {
                finish: None,
                native: None,
                completion_chars: 0,
                usage,
            });
        };
        let m = c.message.as_ref();
        let mut chars = 0;
        for raw in [
            m.and_then(|m| m.content),
            m.and_then(|m| m.reasoning),
            c.text,
        ] {
            chars += probe::str_len(raw)?;
        }
        for call in m.and_then(|m| m.tool_calls.as_deref()).unwrap_or_default() {
            chars += probe::str_len(call.function.as_ref().and_then(|f| f.arguments))?;
        }
        Some(Facts {
            finish: probe::string(c.finish_reason)?,
            native: probe::string(c.native_finish_reason)?,
            completion_chars: chars as u64,
            usage,
        })
    }

    /// Prices the completion, finishes the accounting and returns the `usage` (with cost) to
    /// write into it.
    fn settle(self, acc: &mut Accounting) -> UsageReport {
        let usage = self
            .usage
            .unwrap_or_else(|| Usage::estimate(acc.prompt_chars, self.completion_chars));
        acc.record.upstream_id = None;
        let cost = acc.finish(&usage, self.finish, self.native, false);
        UsageReport::new(&usage, &cost, false)
    }
}

/// The parts of a completion [`Facts::probe`] reads, borrowed; other fields are skipped, and a
/// field of another type fails the probe.
mod probe {
    use serde::Deserialize;
    use serde_json::value::RawValue;

    #[derive(Deserialize)]
    pub(super) struct Response<'a> {
        #[serde(borrow, default)]
        pub(super) choices: Vec<Choice<'a>>,
        #[serde(borrow)]
        pub(super) usage: Option<&'a RawValue>,
    }

    #[derive(Deserialize)]
    pub(super) struct Choice<'a> {
        #[serde(borrow)]
        pub(super) finish_reason: Option<&'a RawValue>,
        #[serde(borrow)]
        pub(super) native_finish_reason: Option<&'a RawValue>,
        #[serde(borrow)]
        pub(super) message: Option<Message<'a>>,
        #[serde(borrow)]
        pub(super) text: Option<&'a RawValue>,
    }

    #[derive(Deserialize)]
    pub(super) struct Message<'a> {
        #[serde(borrow)]
        pub(super) content: Option<&'a RawValue>,
        #[serde(borrow)]
        pub(super) reasoning: Option<&'a RawValue>,
        #[serde(borrow)]
        pub(super) tool_calls: Option<Vec<Call<'a>>>,
    }

    #[derive(Deserialize)]
    pub(super) struct Call<'a> {
        #[serde(borrow)]
        pub(super) function: Option<Function<'a>>,
    }

    #[derive(Deserialize)]
    pub(super) struct Function<'a> {
        #[serde(borrow)]
        pub(super) arguments: Option<&'a RawValue>,
    }

    /// `Value::as_str` of a raw value (`Some(None)` when it is not a string); `None` when the
    /// string does not unescape.
    pub(super) fn string(raw: Option<&RawValue>) -> Option<Option<String>> {
        match raw.map(RawValue::get) {
            Some(s) if s.starts_with('"') => serde_json::from_str(s).ok().map(Some),
            _ => Some(None),
        }
    }

    /// The unescaped length of a raw string (0 when it is not one), as `Value::as_str().len()`.
    pub(super) fn str_len(raw: Option<&RawValue>) -> Option<usize> {
        match raw.map(RawValue::get) {
            Some(s) if s.starts_with('"') && !s.contains('\\') => Some(s.len() - 2),
            Some(s) if s.starts_with('"') => {
                serde_json::from_str::<String>(s).ok().map(|s| s.len())
            }
            _ => Some(0),
        }
    }
}

/// Characters of generated text in a choice (message content, reasoning, tool arguments, text).
fn text_chars(choice: &Value) -> u64 {
    let m = &choice["message"];
    let mut n = 0;
    for v in [&m["content"], &m["reasoning"], &choice["text"]] {
        n += v.as_str().map_or(0, str::len);
    }
    if let Some(calls) = m["tool_calls"].as_array() {
        n += calls
            .iter()
            .map(|c| c["function"]["arguments"].as_str().map_or(0, str::len))
            .sum::<usize>();
    }
    n as u64
}

fn accounting_for<B>(req: &Request<B>, config: &MeterLayer) -> Result<Accounting, BoxError> {
    let ext = req.extensions();
    let chat = ext.get::<Arc<ChatRequest>>().ok_or_else(|| {
        MissingInput::new(
            "meter",
            "ChatRequest",
            "set by the parse layer, or read from the body",
        )
    })?;
    let target = ext.get::<Target>();
    let ctx = ext.get::<RequestContext>();
    let requested = chat.model.as_deref().unwrap_or_default();
    // Money fails closed: a request the meter cannot price is not sent.
    let given = match (target, &config.shared.prices) {
        (Some(_), _) => None,
        (None, Some(prices)) => Some(prices.for_model(requested).ok_or_else(|| {
            GatewayError::bad_request(format!(
                "meter: no price is set for model `{requested}`, so it is not served"
            ))
        })?),
        (None, None) => {
            return Err(MissingInput::new(
                "meter",
                "Target",
                "set by the fallback layer per attempt; alone, give MeterLayer::prices",
            )
            .into());
        }
    };
    let (model, provider_name, provider_slug, upstream_model) = match target {
        Some(t) => {
            let e = t.endpoint();
            (
                t.model.slug.clone(),
                e.provider.name.clone(),
                e.provider.slug.clone(),
                e.upstream_model.clone(),
            )
        }
        None => {
            let requested: Arc<str> = requested.into();
            (requested.clone(), Arc::default(), Arc::default(), requested)
        }
    };
    let attempts = attempts(ctx, || AttemptRecord {
        provider: provider_slug.clone(),
        model: model.clone(),
        status: 200,
        latency_ms: 0,
    });
    let key = ext.get::<CallerKey>();
    let started = ctx.map_or_else(Instant::now, RequestContext::start);
    let record = GenerationRecord {
        id: match ctx {
            Some(c) => c.id().shared(),
            None => crate::context::GenerationId::new().shared(),
        },
        created_at: now_ms(),
        model,
        provider_name,
        provider_slug,
        upstream_model,
        api_key_hash: key.map(|k| k.hash.clone()),
        label: key.map(|k| k.name.clone()),
        streamed: chat.stream,
        latency_ms: started.elapsed().as_millis() as u64,
        attempts,
        router: chat
            .hints
            .requested
            .clone()
            .filter(|_| chat.hints.strategy == Some("auto")),
        session_id: chat.session_id.clone(),
        external_user: chat
            .field("user")
            .and_then(Value::as_str)
            .map(str::to_owned),
        strategy: chat.hints.strategy.map(str::to_owned),
        autoroute_score: chat.hints.auto.as_ref().map(|a| f64::from(a.score)),
        scorer: chat.hints.auto.as_ref().map(|a| a.scorer.clone()),
        api: ext.get::<Ingress>().copied().unwrap_or_default(),
        ..GenerationRecord::default()
    };
    Ok(Accounting {
        shared: config.shared.clone(),
        record,
        target: target.cloned(),
        given,
        prompt_chars: chat.prompt_chars as u64,
        ctx: ctx.cloned(),
        started,
        attempt_started: Instant::now(),
        first_content: None,
        tap: ext.get::<crate::telemetry::Tap>().cloned(),
        commit: None,
    })
}

/// The ledger's attempts: the logged ones, then `serving`, in one allocation. Only the fields
/// the ledger keeps are copied out of the log (not a snapshot of whole entries).
fn attempts(
    ctx: Option<&RequestContext>,
    serving: impl FnOnce() -> AttemptRecord,
) -> Vec<AttemptRecord> {
    let copy = |logged: &[crate::context::Attempt]| {
        let mut out = Vec::with_capacity(logged.len() + 1);
        out.extend(logged.iter().map(|a| AttemptRecord {
            provider: a.provider_slug.clone(),
            model: a.model.clone(),
            status: a.status,
            latency_ms: a.latency_ms,
        }));
        out
    };
    let mut out = ctx.map_or_else(Vec::new, |c| c.with_attempts(copy));
    out.push(serving());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The probe reads what the `Value` does, or declines.
    fn agree(json: &str) -> Option<()> {
        let probed = Facts::probe(json.as_bytes())?;
        let v: Value = serde_json::from_str(json).expect("json");
        let of = Facts::of(&v);
        assert_eq!(probed.finish, of.finish, "{json}");
        assert_eq!(probed.native, of.native, "{json}");
        assert_eq!(probed.completion_chars, of.completion_chars, "{json}");
        assert_eq!(probed.usage, of.usage, "{json}");
        Some(())
    }

    #[test]
    fn the_probe_reads_what_the_value_does() {
        for json in [
            r#"{"id":"g","choices":[{"message":{"content":"He said \"hi\" \u00e9 🎉","reasoning":"hmm","tool_calls":[{"function":{"arguments":"{\"a\":1}"}},{"function":null},{}]},"finish_reason":"stop","native_finish_reason":"end_turn"}],"usage":{"prompt_tokens":3,"completion_tokens":4}}"#,
            r#"{"choices":[{"text":"legacy \n text","finish_reason":"length","native_finish_reason":null}]}"#,
            r#"{"choices":[],"usage":null}"#,
            r#"{"choices":[{"message":null,"finish_reason":7}],"usage":{"odd":true}}"#,
            r#"{"choices":[{"message":{"content":[{"type":"text"}]}}],"usage":"none"}"#,
            "{\n  \"choices\": [ { \"message\": { \"content\": \"pretty\" } } ]\n}",
        ] {
            assert_eq!(agree(json), Some(()), "the probe declined {json}");
        }
        // Shapes it does not read are left to the `Value`.
        for json in [
            r#"{"choices":[{"message":"odd"}]}"#,
            r#"{"choices":[{"message":{"tool_calls":{}}}]}"#,
            r#"{"choices":[{"finish_reason":"stop","finish_reason":"length"}]}"#,
            r#"{"choices":[]"#,
        ] {
            assert!(Facts::probe(json.as_bytes()).is_none(), "{json}");
        }
    }

    #[test]
    fn missing_usage_is_estimated_from_the_text() {
        let facts =
            Facts::probe(br#"{"choices":[{"message":{"content":"12345678"}}]}"#).expect("probed");
        assert_eq!((facts.completion_chars, facts.usage), (8, None));
    }
}
