//! Upstream providers: who serves models, how to reach them, and with which key.

use super::UpstreamParts;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The wire format an upstream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    /// OpenAI Chat Completions (`/chat/completions`), also spoken by most providers.
    #[default]
    OpenAi,
    /// Anthropic Messages (`/messages`).
    Anthropic,
    /// Google Gemini (`/models/{model}:generateContent`).
    Gemini,
}

impl Api {
    /// The config name of the format.
    pub fn as_str(self) -> &'static str {
        match self {
            Api::OpenAi => "openai",
            Api::Anthropic => "anthropic",
            Api::Gemini => "gemini",
        }
    }
}

/// Per-provider timeouts. Each bounds one phase of an upstream call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP + TLS connect.
    pub connect: Duration,
    /// From sending the request to the response headers and, for streams, the first body byte.
    pub first_byte: Duration,
    /// Longest silence between two body chunks.
    pub idle: Duration,
    /// The whole exchange, body included.
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            first_byte: Duration::from_secs(60),
            idle: Duration::from_secs(30),
            total: Duration::from_secs(600),
        }
    }
}

/// A provider secret. Its `Debug` never shows the value, so it cannot leak through logs.
///
/// The header values that carry it upstream are built once, here, rather than formatted and
/// validated again on every request.
#[derive(Clone)]
pub struct ApiKey {
    secret: String,
    /// `Bearer <secret>` (OpenAI-style `Authorization`), when it is a valid header value.
    bearer: Option<http::HeaderValue>,
    /// The secret alone (`x-api-key`, `x-goog-api-key`), when it is a valid header value.
    bare: Option<http::HeaderValue>,
}

impl ApiKey {
    /// Wraps a secret.
    pub fn new(key: impl Into<String>) -> Self {
        let secret = key.into();
        let sensitive = |v: String| {
            http::HeaderValue::try_from(v).ok().map(|mut v| {
                v.set_sensitive(true);
                v
            })
        };
        ApiKey {
            bearer: sensitive(format!("Bearer {secret}")),
            bare: sensitive(secret.clone()),
            secret,
        }
    }

    /// The secret itself, for the one place that sends it upstream.
    pub fn expose(&self) -> &str {
        &self.secret
    }

    /// `Authorization: Bearer <secret>`'s value (marked sensitive); `None` when the secret
    /// holds bytes a header cannot.
    pub fn bearer_header(&self) -> Option<&http::HeaderValue> {
        self.bearer.as_ref()
    }

    /// The secret as a header value (marked sensitive); `None` when it holds bytes a header
    /// cannot.
    pub fn bare_header(&self) -> Option<&http::HeaderValue> {
        self.bare.as_ref()
    }
}

impl PartialEq for ApiKey {
    fn eq(&self, other: &Self) -> bool {
        self.secret == other.secret
    }
}

impl Eq for ApiKey {}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// One upstream provider.
#[derive(Debug, Clone)]
pub struct Provider {
    /// Routing slug, what `provider.order`/`only`/`ignore` name (`"openai"`).
    pub slug: Arc<str>,
    /// Display name, returned as `provider` in responses (`"OpenAI"`).
    pub name: Arc<str>,
    /// Upstream wire format.
    pub api: Api,
    /// Base URL including the API version path, without a trailing slash.
    pub base_url: String,
    /// The environment variable the key came from, if any.
    pub api_key_env: Option<String>,
    /// The key sent upstream; `None` means the provider needs none (local servers, tests).
    pub api_key: Option<ApiKey>,
    /// Timeouts for calls to this provider.
    pub timeouts: Timeouts,
    /// Whether the provider may store or train on prompts (`provider.data_collection: deny`
    /// excludes it when true).
    pub collects_data: bool,
    /// Zero data retention.
    pub zdr: bool,
    /// Extra headers sent with every upstream request (e.g. `anthropic-version`).
    pub headers: Vec<(String, String)>,
    /// `base_url` and `headers` parsed once for the upstream calls: build it with
    /// [`UpstreamParts::new`] from the two fields above (the default prepares nothing, and every
    /// call then joins and parses them itself).
    pub upstream_parts: UpstreamParts,
    /// `GET /providers` fields.
    pub privacy_policy_url: Option<String>,
    /// `GET /providers` fields.
    pub terms_of_service_url: Option<String>,
    /// `GET /providers` fields.
    pub status_page_url: Option<String>,
    /// ISO-3166 alpha-2 country of the headquarters.
    pub headquarters: Option<String>,
    /// False when the provider's key variable is named but not set: its endpoints are not routed to.
    pub enabled: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_carries_its_header_values_built_once_and_sensitive() {
        let k = ApiKey::new("sk-test");
        let bearer = k.bearer_header().expect("a valid header value");
        assert_eq!(bearer, "Bearer sk-test");
        assert!(bearer.is_sensitive());
        let bare = k.bare_header().expect("a valid header value");
        assert_eq!(bare, "sk-test");
        assert!(bare.is_sensitive());
        assert_eq!(format!("{k:?}"), "ApiKey(<redacted>)");
        assert_eq!(k, ApiKey::new("sk-test"));
        assert_ne!(k, ApiKey::new("sk-other"));
    }

    #[test]
    fn a_key_no_header_can_hold_is_never_sent() {
        let k = ApiKey::new("sk\ntest");
        assert_eq!(k.expose(), "sk\ntest");
        assert!(k.bearer_header().is_none() && k.bare_header().is_none());
    }
}
