//! The request's own record, shared by every layer it passes: [`RequestContext`].

use crate::catalog::Usd;
use crate::decimal::itoa;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request's identity and running record, from the edge to the upstream, as one request
/// extension: its generation id, when it arrived, the time spent waiting on upstreams, the
/// attempts made so far, and the credit hold to settle. Cheap to clone (one `Arc`): every
/// attempt's request carries the same context.
///
/// The parse layer creates it; a layer that finds none where it needs one says so (each
/// layer's contract names it), and a user's own edge layer can insert one itself:
///
/// ```
/// use switchyard::context::{Attempt, RequestContext};
/// let ctx = RequestContext::new();
/// assert!(ctx.id().as_str().starts_with("gen-"));
/// ctx.record_attempt(Attempt::new("Acme", "acme", "acme/small", 503, 12));
/// assert_eq!(ctx.attempts()[0].status, 503);
/// let mut req = http::Request::new(());
/// req.extensions_mut().insert(ctx.clone());
/// ```
#[derive(Clone)]
pub struct RequestContext(Arc<Shared>);

struct Shared {
    id: GenerationId,
    start: Instant,
    wait: UpstreamWait,
    attempts: Mutex<Vec<Attempt>>,
    hold: Mutex<Option<Box<dyn CreditSettle>>>,
}

impl fmt::Debug for RequestContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestContext")
            .field("id", &self.0.id)
            .field("start", &self.0.start)
            .field("upstream_wait", &self.0.wait.get())
            .field("attempts", &self.attempts().len())
            .field("credit_hold", &self.has_credit_hold())
            .finish()
    }
}

impl Default for RequestContext {
    fn default() -> Self {
        Self::new()
    }
}

impl RequestContext {
    /// A context for a request arriving now, with a fresh generation id.
    pub fn new() -> RequestContext {
        Self::with_id(GenerationId::new(), Instant::now())
    }

    /// A context with a given id and arrival time.
    pub fn with_id(id: GenerationId, start: Instant) -> RequestContext {
        RequestContext(Arc::new(Shared {
            id,
            start,
            wait: UpstreamWait::default(),
            attempts: Mutex::new(Vec::new()),
            hold: Mutex::new(None),
        }))
    }

    /// The generation id (`gen-…`): the response `id`, `X-Generation-Id`, the ledger's key.
    pub fn id(&self) -> &GenerationId {
        &self.0.id
    }

    /// When the request arrived.
    pub fn start(&self) -> Instant {
        self.0.start
    }

    /// The time spent waiting on upstreams, which the upstream service adds to.
    pub fn upstream_wait(&self) -> &UpstreamWait {
        &self.0.wait
    }

    /// Appends one finished attempt (the fallback layer records each).
    pub fn record_attempt(&self, attempt: Attempt) {
        if let Ok(mut v) = self.0.attempts.lock() {
            v.push(attempt);
        }
    }

    /// A copy of the attempts so far.
    pub fn attempts(&self) -> Vec<Attempt> {
        self.with_attempts(<[Attempt]>::to_vec)
    }

    /// Reads the attempts so far in place (a poisoned log reads as empty).
    pub fn with_attempts<R>(&self, f: impl FnOnce(&[Attempt]) -> R) -> R {
        match self.0.attempts.lock() {
            Ok(v) => f(&v),
            Err(_) => f(&[]),
        }
    }

    /// Puts a credit hold on the request, for the meter to settle with the actual cost. A hold
    /// already there is released first.
    pub fn hold_credit(&self, hold: impl CreditSettle + 'static) {
        self.hold_credit_boxed(Box::new(hold));
    }

    /// As [`RequestContext::hold_credit`], for a hold already boxed.
    pub fn hold_credit_boxed(&self, hold: Box<dyn CreditSettle>) {
        let old = self.0.hold.lock().ok().and_then(|mut g| g.replace(hold));
        drop(old);
    }

    /// Whether a credit hold waits to be settled.
    pub fn has_credit_hold(&self) -> bool {
        self.0.hold.lock().map(|g| g.is_some()).unwrap_or(false)
    }

    /// Settles the hold to the actual cost (once: later calls find none). False when there was
    /// no hold.
    pub fn settle_credit(&self, actual: Usd) -> bool {
        self.settle_credit_with_tokens(actual, 0)
    }

    /// As [`RequestContext::settle_credit`], also counting `tokens` towards the key's tokens
    /// per minute.
    pub fn settle_credit_with_tokens(&self, actual: Usd, tokens: u64) -> bool {
        let hold = self.0.hold.lock().ok().and_then(|mut g| g.take());
        match hold {
            Some(h) => {
                h.settle_with_tokens(actual, tokens);
                true
            }
            None => false,
        }
    }
}

/// A credit hold: the worst case reserved when the request was admitted, replaced by the
/// actual cost when its response ends. Dropping an unsettled hold must release it.
/// [`crate::keys::Reservation`] is the key store's.
pub trait CreditSettle: Send + fmt::Debug {
    /// Replaces the hold with the actual cost.
    fn settle(self: Box<Self>, actual: Usd);

    /// As [`CreditSettle::settle`], also counting the request's tokens (prompt + completion)
    /// towards its key's tokens per minute. The default ignores them.
    fn settle_with_tokens(self: Box<Self>, actual: Usd, tokens: u64) {
        let _ = tokens;
        self.settle(actual);
    }
}

/// The generation id (`gen-…`) of a request: response `id`, `X-Generation-Id`, ledger key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GenerationId(pub Arc<str>);

impl GenerationId {
    /// A fresh random id: `gen-<unix seconds>-<20 alphanumerics>`.
    pub fn new() -> Self {
        use rand::RngCore;
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        // Written into a stack buffer, so the `Arc<str>` is the id's only allocation.
        let mut buf = [0u8; GENERATION_ID_MAX];
        let mut digits = [0u8; 20];
        let mut len = 0;
        for part in [b"gen-".as_slice(), itoa(secs, &mut digits), b"-"] {
            buf[len..len + part.len()].copy_from_slice(part);
            len += part.len();
        }
        // Six random bits per character, 62 and 63 redrawn: uniform over the 62 alphanumerics,
        // from about three 64-bit draws instead of one 32-bit draw per character.
        let mut rng = rand::rng();
        let mut filled = 0;
        while filled < 20 {
            let mut bits = rng.next_u64();
            for _ in 0..10 {
                let i = (bits & 63) as usize;
                bits >>= 6;
                if let (Some(&c), true) = (ALPHANUMERIC.get(i), filled < 20) {
                    buf[len + filled] = c;
                    filled += 1;
                }
            }
        }
        len += 20;
        // Only ASCII was written.
        let id = std::str::from_utf8(&buf[..len]).unwrap_or_default();
        GenerationId(Arc::from(id))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id's text, shared rather than copied (ledger records and error chunks hold it).
    pub fn shared(&self) -> Arc<str> {
        Arc::clone(&self.0)
    }
}

/// The characters of a generation id's random part.
const ALPHANUMERIC: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Longest generation id: `gen-`, 20 digits of seconds, `-`, 20 alphanumerics.
const GENERATION_ID_MAX: usize = 4 + 20 + 1 + 20;

impl Default for GenerationId {
    fn default() -> Self {
        Self::new()
    }
}

/// Microseconds this request spent waiting on upstreams (response headers and body frames),
/// shared by parse (which inserts and reads it) and upstream (which adds to it); see
/// [`crate::overhead`]. Held inside the [`RequestContext`] (no allocation of its own), so a
/// body that adds to it holds the context.
#[derive(Debug, Default)]
pub struct UpstreamWait(AtomicU64);

/// The flag [`UpstreamWait::close`] sets in the counter (a sum of microseconds never reaches it).
const WAIT_CLOSED: u64 = 1 << 63;

impl UpstreamWait {
    /// Adds a wait.
    pub fn add(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX) & !WAIT_CLOSED;
        self.0.fetch_add(us, Ordering::Relaxed);
    }

    /// The total wait so far.
    pub fn get(&self) -> Duration {
        Duration::from_micros(self.0.load(Ordering::Relaxed) & !WAIT_CLOSED)
    }

    /// Marks the total as read: parse has sent the overhead header, so later waits (a
    /// stream's frames) change nothing, and [`WaitClock`](crate::overhead::WaitClock)s stop
    /// reading the clock for them. Sets the counter's top bit, which [`Self::get`] ignores.
    pub fn close(&self) {
        self.0.fetch_or(WAIT_CLOSED, Ordering::Relaxed);
    }

    /// Whether [`Self::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.0.load(Ordering::Relaxed) & WAIT_CLOSED != 0
    }
}

/// One attempt, for `openrouter_metadata.attempts` and the ledger.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    /// Provider display name.
    pub provider: Arc<str>,
    /// Provider slug.
    pub provider_slug: Arc<str>,
    /// Model slug.
    pub model: Arc<str>,
    /// HTTP status (or the gateway's status for transport failures: 502/504).
    pub status: u16,
    /// Milliseconds the attempt took until classified.
    pub latency_ms: u64,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

impl Attempt {
    /// A finished attempt: provider display name and slug, model slug, status, milliseconds.
    pub fn new(
        provider: &str,
        provider_slug: &str,
        model: &str,
        status: u16,
        latency_ms: u64,
    ) -> Attempt {
        Attempt {
            provider: provider.into(),
            provider_slug: provider_slug.into(),
            model: model.into(),
            status,
            latency_ms,
            error: None,
        }
    }
}

/// The gateway key a request authenticated with (the auth layer's extension).
#[derive(Debug, Clone)]
pub struct CallerKey {
    /// SHA-256 hex of the key.
    pub hash: String,
    /// Its name.
    pub name: String,
}

impl CallerKey {
    /// A key by its SHA-256 hex and its name.
    pub fn new(hash: impl Into<String>, name: impl Into<String>) -> CallerKey {
        CallerKey {
            hash: hash.into(),
            name: name.into(),
        }
    }
}
