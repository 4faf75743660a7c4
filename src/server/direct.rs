//! The completion endpoints served without going through axum's router.
//!
//! Through the router, every completion request pays for a clone of the router, a boxed clone
//! of the matched route, the nest prefix cut into a new URI and four extensions (matched path,
//! nested path, original URI, URL parameters) that no layer reads. A `POST` to one of the four
//! completion paths goes straight to a clone of its stack instead, and its response gets what
//! the router would add (`Content-Length` when the body's size is known). Everything else —
//! other methods (405 with `Allow`), other paths, odd spellings — is still the router's, so
//! the answers are the same either way.

use crate::context::ApiKind;
use axum::Router;
use futures_util::TryFutureExt;
use futures_util::future::Either;
use http::{Method, Request, Response, header};
use http_body::Body as _;
use http_body_util::Either as BodyEither;
use std::convert::Infallible;
use std::future::Future;
use tower::{Service, ServiceExt};

/// The router and, beside it, the two completion stacks it mounts.
#[derive(Clone)]
pub(super) struct Direct<C> {
    pub(super) router: Router,
    pub(super) chat: C,
    pub(super) completions: C,
}

impl<C> Direct<C>
where
    C: Service<
            Request<axum::body::Body>,
            Response = Response<crate::body::Body>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    C::Future: Send + 'static,
{
    /// Serves one request: completions directly, the rest through the router.
    pub(super) fn call<B>(
        &self,
        req: Request<B>,
    ) -> impl Future<Output = Result<Response<DirectBody>, Infallible>> + Send + use<B, C>
    where
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<crate::BoxError>,
    {
        let req = req.map(axum::body::Body::new);
        let stack = match completion_kind(req.method(), req.uri().path()) {
            Some(ApiKind::Chat) => &self.chat,
            Some(ApiKind::Completions) => &self.completions,
            // Embeddings are the router's: its route marks them with their ingress.
            Some(ApiKind::Embeddings) | None => {
                return Either::Right(
                    self.router
                        .clone()
                        .oneshot(req)
                        .map_ok(|r| r.map(BodyEither::Right)),
                );
            }
        };
        Either::Left(stack.clone().oneshot(req).map_ok(as_routed))
    }
}

/// Which completion endpoint `method` and `path` name, spelled exactly as the router matches
/// it (`/v1/…` or `/api/v1/…`); `None` for anything the router should answer.
fn completion_kind(method: &Method, path: &str) -> Option<ApiKind> {
    if method != Method::POST {
        return None;
    }
    let path = path
        .strip_prefix("/api")
        .unwrap_or(path)
        .strip_prefix("/v1")?;
    match path {
        "/chat/completions" => Some(ApiKind::Chat),
        "/completions" => Some(ApiKind::Completions),
        _ => None,
    }
}

/// A completion's body as its stack made it (not boxed again into axum's type), or the
/// router's.
pub(super) type DirectBody = BodyEither<crate::body::Body, axum::body::Body>;

/// The response as the router would have sent it: `Content-Length` set when the body's size
/// is known and the header absent (what axum's route does).
fn as_routed(mut resp: Response<crate::body::Body>) -> Response<DirectBody> {
    if !resp.headers().contains_key(header::CONTENT_LENGTH)
        && let Some(n) = resp.body().size_hint().exact()
    {
        resp.headers_mut()
            .insert(header::CONTENT_LENGTH, crate::decimal::header_value(n));
    }
    resp.map(BodyEither::Left)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_posts_to_the_four_completion_paths_go_direct() {
        let post = Method::POST;
        for (path, kind) in [
            ("/v1/chat/completions", Some(ApiKind::Chat)),
            ("/api/v1/chat/completions", Some(ApiKind::Chat)),
            ("/v1/completions", Some(ApiKind::Completions)),
            ("/api/v1/completions", Some(ApiKind::Completions)),
            ("/v1/chat/completions/", None),
            ("/apiv1/chat/completions", None),
            ("/api/chat/completions", None),
            ("/v2/chat/completions", None),
            ("/v1//chat/completions", None),
            ("/V1/chat/completions", None),
            ("/v1/models", None),
        ] {
            assert_eq!(completion_kind(&post, path), kind, "{path}");
        }
        assert_eq!(completion_kind(&Method::GET, "/v1/chat/completions"), None);
        assert_eq!(completion_kind(&Method::HEAD, "/v1/completions"), None);
    }
}
