//! The meter service: prices every served attempt and records its generation.

use super::cost::{Cost, price};
use super::report::UsageReport;
use super::stream::MeterStream;
use super::usage::Usage;
use crate::BoxError;
use crate::body::{self as b, Body, call_boxed};
use crate::catalog::Pricing;
use crate::deferred_json::{DeferredJson, FirstChoice};
use crate::ext::{
    AttemptLog, CallerKey, ChatRequest, CreditHold, GenerationId, RequestStart, Target,
};
use crate::keys::period::utc_hhmm;
use crate::ledger::{Attempt as LedgerAttempt, GenerationRecord, MeterSink, now_ms};
use futures_util::future::BoxFuture;
use http::{Request, Response, header};
use serde_json::Value;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tower::{Layer, Service};

/// Applies [`Meter`].
#[derive(Debug, Clone, Default)]
pub struct MeterLayer {
    /// One `Arc` for both: every request's [`Accounting`] holds it, one count to bump.
    shared: Arc<Shared>,
}

/// Where the meter reports, shared by every request's [`Accounting`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Shared {
    pub(crate) sink: Option<Arc<dyn MeterSink>>,
    pub(crate) health: Option<Arc<crate::health::Health>>,
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

/// Everything needed to finish the accounting of one attempt when its response ends.
#[derive(Debug, Clone)]
pub(crate) struct Accounting {
    pub(crate) shared: Arc<Shared>,
    pub(crate) record: GenerationRecord,
    /// The serving endpoint (its prices, its health key): shared with the catalog, not copied.
    /// `None` only where there is none (unit tests): default prices, no health report.
    pub(crate) target: Option<Target>,
    pub(crate) prompt_chars: u64,
    pub(crate) hold: Option<CreditHold>,
    pub(crate) started: Instant,
    pub(crate) attempt_started: Instant,
    pub(crate) first_content: Option<Instant>,
}

impl Accounting {
    /// Prices `usage`, settles credits, records the generation; returns the cost. Call once: the
    /// record is moved into the sink. The reasons are taken owned: they move into the record
    /// (`native` defaults to `finish_reason`).
    pub(crate) fn finish(
        &mut self,
        usage: &Usage,
        finish_reason: Option<String>,
        native: Option<String>,
        cancelled: bool,
    ) -> Cost {
        let hhmm = utc_hhmm(now_ms());
        let cost = match &self.target {
            Some(t) => price(usage, &t.endpoint().pricing, finish_reason.as_deref(), hhmm),
            None => price(usage, &Pricing::default(), finish_reason.as_deref(), hhmm),
        };
        let r = &mut self.record;
        r.native_finish_reason = native.or_else(|| finish_reason.clone());
        r.finish_reason = finish_reason;
        let finish_reason = r.finish_reason.as_deref();
        r.cancelled = cancelled;
        r.tokens_prompt = usage.prompt_tokens;
        r.tokens_completion = usage.completion_tokens;
        r.native_tokens_cached = usage.cached_tokens;
        r.native_tokens_cache_write = usage.cache_write_tokens;
        r.native_tokens_reasoning = usage.reasoning_tokens;
        r.num_media_prompt = usage.images;
        r.num_search_results = usage.web_search_requests;
        r.total_cost = cost.total.picodollars();
        r.upstream_inference_cost = Some(cost.upstream_inference_cost.picodollars());
        r.usage_estimated = usage.estimated;
        r.generation_time_ms =
            (self.started.elapsed().as_millis() as u64).saturating_sub(r.latency_ms);
        if let Some(h) = self.hold.take() {
            h.settle(cost.total);
        }
        if let (Some(health), Some(first), Some(target)) =
            (&self.shared.health, self.first_content, &self.target)
        {
            if !cancelled && finish_reason != Some("error") {
                let ttft = first.duration_since(self.attempt_started);
                health.record_stream(
                    target.key(),
                    ttft,
                    usage.completion_tokens,
                    self.attempt_started.elapsed(),
                );
            }
        }
        if let Some(sink) = &self.shared.sink {
            // Finished once per attempt (the stream and the JSON paths guard it): the record
            // moves into the ledger rather than being copied.
            sink.record(std::mem::take(&mut self.record));
        }
        cost
    }
}

impl<S> Service<Request<Body>> for Meter<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = BoxError> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Response<Body>, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let accounting = accounting_for(&req, &self.config);
        let fut = call_boxed(&mut self.inner, req);
        Box::pin(async move {
            let resp = fut.await?;
            let Some(mut acc) = accounting else {
                return Ok(resp);
            };
            if !resp.status().is_success() {
                return Ok(resp);
            }
            acc.record.latency_ms = acc.started.elapsed().as_millis() as u64;
            // The request's `stream`, as the record took it.
            if acc.record.streamed {
                let (parts, body) = resp.into_parts();
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
                    return Ok(Response::from_parts(parts, body));
                }
            }
            let bytes = crate::translate::read_limited(body, 256 * 1024 * 1024).await?;
            let Ok(mut v) = serde_json::from_slice::<Value>(&bytes) else {
                return Ok(Response::from_parts(parts, b::full(bytes)));
            };
            let report = Facts::of(&v).settle(&mut acc);
            v["usage"] = serde_json::to_value(report)?;
            parts.headers.remove(header::CONTENT_LENGTH);
            Ok(Response::from_parts(
                parts,
                b::full(serde_json::to_vec(&v)?),
            ))
        })
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
        Facts {
            finish: choice["finish_reason"].as_str().map(str::to_owned),
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

fn accounting_for(req: &Request<Body>, config: &MeterLayer) -> Option<Accounting> {
    let target = req.extensions().get::<Target>()?;
    let chat = req.extensions().get::<Arc<ChatRequest>>()?;
    let id = req.extensions().get::<GenerationId>();
    let endpoint = target.endpoint();
    let attempts = attempts(req.extensions().get::<AttemptLog>(), || LedgerAttempt {
        provider: endpoint.provider.slug.clone(),
        model: target.model.slug.clone(),
        status: 200,
        latency_ms: 0,
    });
    let key = req.extensions().get::<CallerKey>();
    let started = req
        .extensions()
        .get::<RequestStart>()
        .map_or_else(Instant::now, |s| s.0);
    let record = GenerationRecord {
        // No id yet is the default's: a fresh one.
        id: match id {
            Some(id) => id.as_str().to_owned(),
            None => GenerationId::default().as_str().to_owned(),
        },
        created_at: now_ms(),
        model: target.model.slug.clone(),
        provider_name: endpoint.provider.name.clone(),
        provider_slug: endpoint.provider.slug.clone(),
        upstream_model: endpoint.upstream_model.clone(),
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
        ..GenerationRecord::default()
    };
    Some(Accounting {
        shared: config.shared.clone(),
        record,
        target: Some(target.clone()),
        prompt_chars: chat.prompt_chars as u64,
        hold: req.extensions().get::<CreditHold>().cloned(),
        started,
        attempt_started: Instant::now(),
        first_content: None,
    })
}

/// The ledger's attempts: the logged ones, then `serving`, in one allocation. Only the fields
/// the ledger keeps are copied out of the log (not a snapshot of whole entries).
fn attempts(
    log: Option<&AttemptLog>,
    serving: impl FnOnce() -> LedgerAttempt,
) -> Vec<LedgerAttempt> {
    // A poisoned log reads as empty, as `AttemptLog::snapshot` has it.
    let logged = log.and_then(|l| l.0.lock().ok());
    let logged = logged.as_deref().map_or(&[][..], Vec::as_slice);
    let mut out = Vec::with_capacity(logged.len() + 1);
    out.extend(logged.iter().map(|a| LedgerAttempt {
        provider: a.provider_slug.clone(),
        model: a.model.clone(),
        status: a.status,
        latency_ms: a.latency_ms,
    }));
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
