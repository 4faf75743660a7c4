//! The key management API in OpenRouter's shape, framework-agnostic: the HTTP layer checks the
//! management key ([`KeyStore::is_management_key`]), then passes method, path and body here.
//!
//! | Request | Answer |
//! |---|---|
//! | `POST /api/v1/keys {"name", "limit", "limit_reset"}` | `201 {"key": <secret, shown once>, "data": {…}}` |
//! | `GET /api/v1/keys` | `200 {"data": [{…}, …]}` |
//! | `GET /api/v1/keys/{hash}` | `200 {"data": {…}}` |
//! | `PATCH /api/v1/keys/{hash} {"name", "limit", "limit_reset", "disabled"}` | `200 {"data": {…}}` |
//! | `DELETE /api/v1/keys/{hash}` | `200 {"deleted": true}` |
//!
//! Creation answers **201 Created** (a new resource; OpenRouter's clients accept any 2xx).
//! Errors use the envelope `{"error": {"code", "message"}}`: 400 for malformed JSON (naming line
//! and column) or bad fields, 404 for an unknown hash, 405 for other methods, 409 for keys that
//! belong to the config file, 500 when persistence fails.
//!
//! ```
//! use http::{Method, StatusCode};
//! use switchyard::keys::{KeyStore, api::handle};
//!
//! let store = KeyStore::in_memory();
//! let (status, body) = handle(&store, &Method::POST, "", br#"{"name": "ci", "limit": 5}"#);
//! assert_eq!(status, StatusCode::CREATED);
//! assert!(body["key"].as_str().unwrap().starts_with("sk-sy-v1-"));
//! assert_eq!(body["data"]["limit_remaining"], 5.0);
//! ```

use super::period::iso8601;
use super::{KeyInfo, KeyStore, KeyUpdate, LimitReset};
use crate::catalog::Usd;
use http::{Method, StatusCode};
use serde_json::{Map, Value, json};

/// Answers one management request. `path_tail` is what follows `/api/v1/keys` (`""` or
/// `/{hash}`); the full path and a query string are tolerated.
pub fn handle(
    store: &KeyStore,
    method: &Method,
    path_tail: &str,
    body: &[u8],
) -> (StatusCode, Value) {
    let path = path_tail.split('?').next().unwrap_or("").trim_matches('/');
    let path = path.strip_prefix("api/v1/").unwrap_or(path);
    let hash = match path.strip_prefix("keys") {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest.trim_start_matches('/'),
        _ => path,
    };
    if hash.contains('/') {
        return error(StatusCode::NOT_FOUND, "No such route");
    }
    let result = match (method, hash.is_empty()) {
        (&Method::POST, true) => create(store, body),
        (&Method::GET, true) => Ok((
            StatusCode::OK,
            json!({"data": store.list().iter().map(key_json).collect::<Vec<_>>()}),
        )),
        (&Method::GET, false) => store
            .get(hash)
            .map(|k| (StatusCode::OK, json!({"data": key_json(&k)})))
            .ok_or_else(|| not_found(hash)),
        (&Method::PATCH, false) => update(store, hash, body),
        (&Method::DELETE, false) => match store.delete(hash) {
            Ok(true) => Ok((StatusCode::OK, json!({"deleted": true}))),
            Ok(false) => Err(not_found(hash)),
            Err(e) => Err(store_error(&e)),
        },
        _ => Err(error(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("{method} is not supported here"),
        )),
    };
    result.unwrap_or_else(|e| e)
}

type Answer = (StatusCode, Value);

fn create(store: &KeyStore, body: &[u8]) -> Result<Answer, Answer> {
    let obj = parse_object(body)?;
    let name = match obj.get("name") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim(),
        _ => {
            return Err(bad_request(
                "`name` is required and must be a non-empty string",
            ));
        }
    };
    let limit = limit_field(&obj)?.flatten();
    let limit_reset = reset_field(&obj)?.unwrap_or_default();
    let limits = limits_fields(&obj, &super::KeyLimits::default())?;
    let (secret, info) = store
        .create_with_limits(name, limit, limit_reset, limits)
        .map_err(|e| store_error(&e))?;
    Ok((
        StatusCode::CREATED,
        json!({"key": secret, "data": key_json(&info)}),
    ))
}

fn update(store: &KeyStore, hash: &str, body: &[u8]) -> Result<Answer, Answer> {
    let obj = parse_object(body)?;
    let name = match obj.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Some(_) => return Err(bad_request("`name` must be a non-empty string")),
    };
    let disabled = match obj.get("disabled") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err(bad_request("`disabled` must be true or false")),
    };
    let limits = if ["rpm", "tpm", "models"]
        .iter()
        .any(|f| obj.contains_key(*f))
    {
        let current = store.limits(hash).unwrap_or_default();
        Some(limits_fields(&obj, &current)?)
    } else {
        None
    };
    let update = KeyUpdate {
        name,
        limit: limit_field(&obj)?,
        limit_reset: reset_field(&obj)?,
        disabled,
        limits,
    };
    match store.update(hash, update) {
        Ok(Some(info)) => Ok((StatusCode::OK, json!({"data": key_json(&info)}))),
        Ok(None) => Err(not_found(hash)),
        Err(e) => Err(store_error(&e)),
    }
}

fn parse_object(body: &[u8]) -> Result<Map<String, Value>, Answer> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(obj)) => Ok(obj),
        Ok(_) => Err(bad_request("The body must be a JSON object")),
        Err(e) => Err(bad_request(&format!(
            "Invalid JSON at line {} column {}: {e}",
            e.line(),
            e.column()
        ))),
    }
}

/// `limit`: absent → `None`; `null` → remove the limit; a non-negative number of USD.
fn limit_field(obj: &Map<String, Value>) -> Result<Option<Option<Usd>>, Answer> {
    match obj.get("limit") {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(v) => match v.as_f64() {
            Some(l) if l >= 0.0 && l.is_finite() => Ok(Some(Some(Usd::from_dollars(l)))),
            _ => Err(bad_request(
                "`limit` must be a non-negative number of USD or null",
            )),
        },
    }
}

/// `rpm`, `tpm` (absent: as in `current`; `null`: unlimited; else a non-negative integer) and
/// `models` (absent: as in `current`; `null` or `[]`: every model; else an array of globs).
fn limits_fields(
    obj: &Map<String, Value>,
    current: &super::KeyLimits,
) -> Result<super::KeyLimits, Answer> {
    let count = |field: &str, old: Option<u64>| match obj.get(field) {
        None => Ok(old),
        Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| {
            bad_request(&format!("`{field}` must be a non-negative integer or null"))
        }),
    };
    let rpm = count("rpm", current.rpm.map(u64::from))?
        .map(|n| u32::try_from(n).map_err(|_| bad_request("`rpm` is too large")))
        .transpose()?;
    let tpm = count("tpm", current.tpm)?;
    let models = match obj.get("models") {
        None => current.models.clone(),
        Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|m| m.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad_request("`models` must be an array of strings"))?,
        Some(_) => return Err(bad_request("`models` must be an array of strings or null")),
    };
    Ok(super::KeyLimits { rpm, tpm, models })
}

/// `limit_reset`: absent → `None`; `null` → never; `daily | weekly | monthly`.
fn reset_field(obj: &Map<String, Value>) -> Result<Option<LimitReset>, Answer> {
    match obj.get("limit_reset") {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(LimitReset::Never)),
        Some(Value::String(s)) => s
            .parse()
            .map(Some)
            .map_err(|e: super::period::UnknownLimitReset| bad_request(&e.to_string())),
        Some(_) => Err(bad_request("`limit_reset` must be a string or null")),
    }
}

fn usd(v: Usd) -> Value {
    json!(v.as_f64())
}

fn opt_usd(v: Option<Usd>) -> Value {
    v.map_or(Value::Null, usd)
}

/// A key in the management API's shape.
pub fn key_json(k: &KeyInfo) -> Value {
    json!({
        "hash": k.hash,
        "name": k.name,
        "label": k.label,
        "disabled": k.disabled,
        "limit": opt_usd(k.limit),
        "limit_remaining": opt_usd(k.limit_remaining()),
        "limit_reset": k.limit_reset.as_str(),
        "include_byok_in_limit": false,
        "usage": usd(k.usage.total),
        "usage_daily": usd(k.usage.daily),
        "usage_weekly": usd(k.usage.weekly),
        "usage_monthly": usd(k.usage.monthly),
        "byok_usage": 0.0,
        "byok_usage_daily": 0.0,
        "byok_usage_weekly": 0.0,
        "byok_usage_monthly": 0.0,
        // Config keys have no creation time.
        "created_at": (k.created_at > 0).then(|| iso8601(k.created_at)),
        "updated_at": null,
        "expires_at": null,
        "rpm": k.limits.rpm,
        "tpm": k.limits.tpm,
        "models": k.limits.models,
    })
}

/// `GET /api/v1/key` (SPEC §1.9) for the request's key.
pub fn key_info_json(k: &KeyInfo) -> Value {
    json!({"data": {
        "label": k.label,
        "limit": opt_usd(k.limit),
        "limit_remaining": opt_usd(k.limit_remaining()),
        "limit_reset": k.limit_reset.as_str(),
        "include_byok_in_limit": false,
        "usage": usd(k.usage.total),
        "usage_daily": usd(k.usage.daily),
        "usage_weekly": usd(k.usage.weekly),
        "usage_monthly": usd(k.usage.monthly),
        "byok_usage": 0.0,
        "byok_usage_daily": 0.0,
        "byok_usage_weekly": 0.0,
        "byok_usage_monthly": 0.0,
        "is_free_tier": false,
        "is_management_key": k.is_management_key,
        "expires_at": null,
        "creator_user_id": null,
        "rate_limit": {"requests": -1, "interval": "10s", "note": "deprecated: no rate limit"},
    }})
}

/// `GET /api/v1/credits`: `total_usage` is every key's usage; `total_credits` is
/// `total_usage` plus every limited key's `limit_remaining`, so the balance clients compute
/// (`total_credits − total_usage`) is what the keys can still spend, and never negative.
/// Unlimited keys add their usage to both sides.
pub fn credits_json(store: &KeyStore) -> Value {
    let (mut usage, mut remaining) = (Usd::ZERO, Usd::ZERO);
    for k in store.list() {
        usage += k.usage.total;
        remaining += k.limit_remaining().unwrap_or(Usd::ZERO);
    }
    json!({"data": {"total_credits": (usage + remaining).as_f64(), "total_usage": usage.as_f64()}})
}

/// The error envelope `{"error": {"code", "message"}}`.
pub fn error_json(status: StatusCode, message: &str) -> Value {
    json!({"error": {"code": status.as_u16(), "message": message}})
}

fn error(status: StatusCode, message: &str) -> Answer {
    (status, error_json(status, message))
}

fn bad_request(message: &str) -> Answer {
    error(StatusCode::BAD_REQUEST, message)
}

fn not_found(hash: &str) -> Answer {
    error(StatusCode::NOT_FOUND, &format!("No key with hash `{hash}`"))
}

fn store_error(e: &super::KeyStoreError) -> Answer {
    let status = match e {
        super::KeyStoreError::ConfigOwned(_) => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error(status, &e.to_string())
}
