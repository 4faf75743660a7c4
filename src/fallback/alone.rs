//! Fallback without a catalogue file or a route layer: over a list of base URLs or of your own
//! services.

use super::{Fallback, FallbackLayer};
use crate::BoxError;
use crate::body::Body;
use crate::catalog::{Catalog, ConfigError, EndpointSpec, ProviderSpec};
use crate::context::{Candidates, Target};
use crate::error::MissingInput;
use crate::upstream::Upstream;
use futures_util::future::BoxFuture;
use http::{Request, Response};
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{Layer, Service, ServiceExt};

/// The one model of a catalogue built for [`over_base_urls`] or [`over_services`].
const MODEL: &str = "fallback/upstreams";

/// Fallback over OpenAI-compatible base URLs (`https://api.example.com/v1`), tried in order,
/// through the crate's pooled HTTPS client. Each attempt sends the client's body to
/// `{base_url}/chat/completions` with `model` as the client sent it.
pub fn over_base_urls(base_urls: &[&str]) -> Result<Fallback<Upstream>, ConfigError> {
    let names: Vec<String> = (1..=base_urls.len())
        .map(|i| format!("upstream-{i}"))
        .collect();
    let mut builder = Catalog::builder();
    for (name, url) in names.iter().zip(base_urls) {
        builder = builder.provider(ProviderSpec::openai(name, url));
    }
    let candidates = only_model(builder, &names)?;
    Ok(FallbackLayer::new()
        .candidates(candidates)
        .layer(Upstream::new()))
}

/// Fallback over your own services, tried in order, each named (the name appears in attempt
/// records and errors). Each gets the request as [`FallbackLayer`] documents: the real body,
/// the path `/chat/completions`, and the attempt's [`Target`].
pub fn over_services<S>(services: Vec<(&str, S)>) -> Result<Fallback<ByProvider<S>>, ConfigError> {
    let names: Vec<String> = services.iter().map(|(n, _)| (*n).to_owned()).collect();
    let mut builder = Catalog::builder();
    for name in &names {
        // Never dialled: `ByProvider` hands each attempt to the named service.
        builder = builder.provider(ProviderSpec::openai(
            name,
            &format!("http://{name}.invalid"),
        ));
    }
    let candidates = only_model(builder, &names)?;
    let by_provider = ByProvider::new(
        services
            .into_iter()
            .map(|(n, s)| (n.to_owned(), s))
            .collect(),
    );
    Ok(FallbackLayer::new()
        .candidates(candidates)
        .layer(by_provider))
}

/// Every endpoint of the one model served by `providers`, in order.
fn only_model(
    builder: crate::catalog::CatalogBuilder,
    providers: &[String],
) -> Result<Candidates, ConfigError> {
    // No upstream model id: each upstream gets the client's `model` as it is.
    let catalog = builder
        .model(MODEL, providers.iter().map(|p| EndpointSpec::new(p, "")))
        .build()?;
    let model = catalog
        .model(MODEL)
        .cloned()
        .ok_or_else(|| ConfigError::new(std::path::Path::new("<fallback>"), "no upstream given"))?;
    Ok(Candidates::new(Target::all_of(&model).collect()))
}

/// Hands each attempt to the service registered under its [`Target`]'s provider slug: the
/// inner service of a fallback whose candidates are your own services.
#[derive(Debug)]
pub struct ByProvider<S> {
    services: Arc<[(String, S)]>,
}

impl<S> Clone for ByProvider<S> {
    fn clone(&self) -> Self {
        ByProvider {
            services: Arc::clone(&self.services),
        }
    }
}

impl<S> ByProvider<S> {
    /// Services by provider slug.
    pub fn new(services: Vec<(String, S)>) -> Self {
        ByProvider {
            services: services.into(),
        }
    }
}

impl<S, B> Service<Request<B>> for ByProvider<S>
where
    S: Service<Request<B>, Response = Response<Body>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Response<Body>, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // The chosen service's readiness is awaited per call.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let Some(target) = req.extensions().get::<Target>() else {
            let e = MissingInput::new("ByProvider", "Target", "set by the fallback layer");
            return Box::pin(std::future::ready(Err(e.into())));
        };
        let slug = &target.endpoint().provider.slug;
        let Some((_, svc)) = self.services.iter().find(|(name, _)| **name == **slug) else {
            let e = format!("ByProvider: no service is registered for provider `{slug}`");
            return Box::pin(std::future::ready(Err(e.into())));
        };
        let svc = svc.clone();
        Box::pin(async move { svc.oneshot(req).await.map_err(Into::into) })
    }
}
