//! Metering a stream: the same SSE stream of N chunks drained through the bare inner service
//! and through `MeterLayer`, side by side in one run. Reports time per chunk and throughput in
//! bytes; the ratio of the two is the metering cost (target: the metered stream keeps at least
//! 95% of the unmetered throughput).
//!
//! ```text
//! cargo bench --bench meter_stream
//! ```
// `criterion_group!` generates an undocumented function.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use http::{Request, Response};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use std::path::Path;
use std::sync::Arc;
use switchyard::catalog::{Catalog, Config};
use switchyard::context::{ApiKind, GenerationId, Target};
use switchyard::meter::MeterLayer;
use switchyard::{Body, BoxError};
use tower::{Layer, Service, ServiceExt};

const CHUNKS: usize = 500;

fn frames() -> Vec<Bytes> {
    let mut out = Vec::with_capacity(CHUNKS + 3);
    let head = r#""id":"gen-1","object":"chat.completion.chunk","created":1700000000,"model":"acme/m","provider":"P""#;
    out.push(Bytes::from(format!("data: {{{head},\"choices\":[{{\"index\":0,\"delta\":{{\"role\":\"assistant\",\"content\":\"\"}},\"finish_reason\":null}}]}}\n\n")));
    for i in 0..CHUNKS {
        out.push(Bytes::from(format!("data: {{{head},\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\" word{i}\"}},\"finish_reason\":null}}]}}\n\n")));
    }
    out.push(Bytes::from(format!("data: {{{head},\"choices\":[{{\"index\":0,\"delta\":{{}},\"finish_reason\":\"stop\"}}]}}\n\n")));
    out.push(Bytes::from(format!("data: {{{head},\"choices\":[],\"usage\":{{\"prompt_tokens\":12,\"completion_tokens\":{CHUNKS},\"total_tokens\":{}}}}}\n\n", CHUNKS + 12)));
    out.push(Bytes::from_static(b"data: [DONE]\n\n"));
    out
}

fn request(target: &Target) -> Request<Body> {
    let chat = switchyard::context::parse_request(
        ApiKind::Chat,
        br#"{"model":"acme/m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
        &http::HeaderMap::new(),
    )
    .unwrap();
    let mut req = Request::new(switchyard::body::empty());
    req.extensions_mut().insert(Arc::new(chat));
    req.extensions_mut().insert(target.clone());
    req.extensions_mut().insert(GenerationId::new());
    req
}

fn bench(c: &mut Criterion) {
    let config = Config::parse(
        Path::new("bench.toml"),
        "[[providers]]\nslug = \"p\"\nbase_url = \"http://127.0.0.1:9/v1\"\n[[models]]\nslug = \"acme/m\"\n[[models.endpoints]]\nprovider = \"p\"\nmodel = \"m\"\npricing = { prompt = 1.0, completion = 2.0 }\n",
    )
    .unwrap();
    let catalog = Catalog::from_config(&config, Path::new(".")).unwrap();
    let target = Target {
        model: catalog.model("acme/m").unwrap().clone(),
        endpoint: 0,
    };
    let frames = frames();
    let bytes: usize = frames.iter().map(Bytes::len).sum();
    let inner = tower::service_fn(move |_req: Request<Body>| {
        let frames = frames.clone();
        async move {
            let stream = futures_util::stream::iter(
                frames
                    .into_iter()
                    .map(|b| Ok::<_, BoxError>(Frame::data(b))),
            );
            Ok::<_, BoxError>(Response::new(switchyard::body::boxed(StreamBody::new(
                stream,
            ))))
        }
    });
    let metered = MeterLayer::new().layer(inner.clone());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("stream");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function(BenchmarkId::new("unmetered", CHUNKS), |b| {
        b.iter(|| rt.block_on(drain(inner.clone(), request(&target))));
    });
    group.bench_function(BenchmarkId::new("metered", CHUNKS), |b| {
        b.iter(|| rt.block_on(drain(metered.clone(), request(&target))));
    });
    group.finish();
}

async fn drain<S>(svc: S, req: Request<Body>) -> usize
where
    S: Service<Request<Body>, Response = Response<Body>, Error = BoxError>,
{
    let resp = svc.oneshot(req).await.unwrap();
    let mut body = resp.into_body();
    let mut n = 0;
    while let Some(frame) = body.frame().await {
        n += frame.unwrap().into_data().map_or(0, |d| d.len());
    }
    n
}

criterion_group!(benches, bench);
criterion_main!(benches);
