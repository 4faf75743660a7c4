//! What every upstream request to one provider shares, parsed from its config once.
//!
//! Without it each upstream call formats `base_url + path` into a `String`, parses that into a
//! [`Uri`] (copying the authority and the path again) and parses the provider's extra headers:
//! four allocations and about 1,300 instructions per request for an OpenAI-style provider, more
//! with configured headers. A prepared [`Uri`] is cloned instead: two reference counts.
//!
//! ```
//! use switchyard::catalog::UpstreamParts;
//!
//! let parts = UpstreamParts::new(
//!     "https://api.example.com/v1",
//!     &[("anthropic-version".into(), "2023-06-01".into())],
//! );
//! let uri = parts.uri("/chat/completions").unwrap();
//! assert_eq!(uri.to_string(), "https://api.example.com/v1/chat/completions");
//! assert!(parts.uri("/models/m:generateContent").is_none()); // built per request
//! assert_eq!(parts.headers()[0].1, "2023-06-01");
//! ```

use http::{HeaderName, HeaderValue, Uri};

/// The request paths whose upstream URI does not depend on the request: the OpenAI paths
/// (`translate::openai::path`) and Anthropic's. Gemini's paths name the model, so they are
/// joined per request.
const FIXED_PATHS: [&str; 3] = ["/chat/completions", "/completions", "/messages"];

/// A provider's prepared request parts: the URIs of the fixed paths and the parsed extra
/// headers. Empty (every URI joined per request, no headers) by default.
#[derive(Debug, Clone, Default)]
pub struct UpstreamParts {
    /// `(path, base_url + path)`; a path whose join does not parse is left out, so the
    /// per-request join reports the error.
    uris: Vec<(&'static str, Uri)>,
    /// The configured headers that are valid HTTP; invalid ones are never sent.
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl UpstreamParts {
    /// Prepares the parts for `base_url` (without a trailing slash) and the configured
    /// `headers`.
    pub fn new(base_url: &str, headers: &[(String, String)]) -> Self {
        let uris = FIXED_PATHS
            .iter()
            .filter_map(|&path| {
                let uri = format!("{base_url}{path}").parse::<Uri>().ok()?;
                Some((path, uri))
            })
            .collect();
        let headers = headers
            .iter()
            .filter_map(|(k, v)| {
                Some((
                    HeaderName::try_from(k.as_str()).ok()?,
                    HeaderValue::from_str(v).ok()?,
                ))
            })
            .collect();
        UpstreamParts { uris, headers }
    }

    /// The prepared URI for `path`, when it is one of the fixed paths.
    pub fn uri(&self, path: &str) -> Option<&Uri> {
        self.uris.iter().find(|(p, _)| *p == path).map(|(_, u)| u)
    }

    /// The configured extra headers, parsed.
    pub fn headers(&self) -> &[(HeaderName, HeaderValue)] {
        &self.headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_paths_join_like_the_per_request_join() {
        for base in [
            "http://127.0.0.1:9/v1",
            "https://api.openai.com/v1",
            "http://[::1]:8080",
            "https://h.example/a/b",
        ] {
            let parts = UpstreamParts::new(base, &[]);
            for path in FIXED_PATHS {
                let want: Uri = format!("{base}{path}").parse().expect("valid");
                assert_eq!(parts.uri(path), Some(&want), "{base}{path}");
            }
        }
    }

    #[test]
    fn a_base_that_does_not_parse_prepares_nothing() {
        let parts = UpstreamParts::new("not a url", &[]);
        assert!(FIXED_PATHS.iter().all(|p| parts.uri(p).is_none()));
    }

    #[test]
    fn only_valid_headers_are_kept_in_order() {
        let parts = UpstreamParts::new(
            "http://x",
            &[
                ("x-a".into(), "1".into()),
                ("bad name".into(), "2".into()),
                ("x-b".into(), "bad\nvalue".into()),
                ("x-c".into(), "3".into()),
            ],
        );
        let names: Vec<_> = parts.headers().iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["x-a", "x-c"]);
    }
}
