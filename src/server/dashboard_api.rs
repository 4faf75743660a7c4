//! `GET /dashboard` and `GET /dashboard/data`: a live view of the gateway for a person —
//! traffic share per provider and model, error and fallback rates, latency percentiles, spend
//! per key and model over time, and the latest generations with their attempt chains.
//!
//! The page is one HTML file with its CSS and JavaScript inline (`assets/dashboard/`), shipped
//! in the binary with `include_str!`: nothing to build, nothing fetched from elsewhere, charts
//! drawn as SVG by hand. It polls `/dashboard/data` (the [`Recent`](crate::telemetry::Recent)
//! store's snapshot) every two seconds.
//!
//! Like `/metrics`, it shows traffic and spend, so with keys configured both need the
//! management key. A browser cannot add a bearer header to a page it navigates to, so the key
//! is also taken as the password of HTTP Basic authentication: the 401 asks the browser for it,
//! and the browser then sends it with the page's own polls.

use super::keys_api::bearer;
use super::{Gateway, error};
use crate::error::GatewayError;
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};

const PAGE: &str = include_str!("../../assets/dashboard/index.html");

/// `GET /dashboard`: the page.
pub(super) async fn page(State(gw): State<Gateway>, headers: HeaderMap) -> Response {
    if let Some(refused) = refuse(&gw, &headers) {
        return refused;
    }
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        PAGE,
    )
        .into_response()
}

/// `GET /dashboard/data`: the page's JSON.
pub(super) async fn data(State(gw): State<Gateway>, headers: HeaderMap) -> Response {
    if let Some(refused) = refuse(&gw, &headers) {
        return refused;
    }
    match gw.telemetry.recent_store() {
        Some(recent) => Json(recent.snapshot()).into_response(),
        None => error(GatewayError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "The dashboard is off: [telemetry] dashboard = false",
        )),
    }
}

/// The 401 for a gateway with keys when the request does not carry the management key.
fn refuse(gw: &Gateway, headers: &HeaderMap) -> Option<Response> {
    let store = gw.keys.as_ref()?;
    let given = bearer(headers);
    let basic = basic_password(given);
    if store.is_management_key(given)
        || basic.is_some_and(|p| store.is_management_key(&format!("Bearer {p}")))
    {
        return None;
    }
    let mut resp = error(GatewayError::new(
        StatusCode::UNAUTHORIZED,
        "authentication",
        "The dashboard needs the management key (as a bearer token, or as the Basic password)",
    ));
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"switchyard dashboard\", charset=\"UTF-8\""),
    );
    Some(resp)
}

/// The password of an `Authorization: Basic …` value.
fn basic_password(authorization: &str) -> Option<String> {
    let (scheme, encoded) = authorization.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(base64_decode(encoded.trim())?).ok()?;
    let (_user, password) = decoded.split_once(':')?;
    Some(password.to_owned())
}

/// Standard base64 with padding, as browsers send Basic credentials.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes = text.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= value(c)? << (18 - 6 * i);
        }
        let n = match chunk.len() {
            4 => 3,
            3 => 2,
            2 => 1,
            _ => return None,
        };
        out.extend_from_slice(&acc.to_be_bytes()[1..=n]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_decode_to_their_password() {
        // "user:sk-mgmt" and ":p" in base64.
        assert_eq!(
            basic_password("Basic dXNlcjpzay1tZ210").as_deref(),
            Some("sk-mgmt")
        );
        assert_eq!(basic_password("basic OnA=").as_deref(), Some("p"));
        assert_eq!(basic_password("Bearer dXNlcjpzay1tZ210"), None);
        assert_eq!(basic_password("Basic !!!"), None);
        assert_eq!(base64_decode("TWFu").as_deref(), Some(&b"Man"[..]));
        assert_eq!(base64_decode("TWE=").as_deref(), Some(&b"Ma"[..]));
        assert_eq!(base64_decode("TQ==").as_deref(), Some(&b"M"[..]));
    }
}
