//! Prometheus text over HTTP for the provider and the bridge (`GET /metrics`), each
//! from its own registry (so several can run in one process, e.g. in tests).

use std::{future::Future, sync::Arc};

use axum::{Router, extract::State, http::header, response::IntoResponse, routing::get};
use prometheus::{Encoder, Registry, TextEncoder};

/// A histogram of step durations in seconds by `phase`, with buckets from 10 ms to an
/// hour (a step may be a transaction of a few ms or a job of an hour).
#[cfg(any(feature = "provider", feature = "bridge"))]
pub(crate) fn phase_histogram(
    name: &str,
    help: &str,
) -> Result<prometheus::HistogramVec, prometheus::Error> {
    prometheus::HistogramVec::new(
        prometheus::HistogramOpts::new(name, help).buckets(vec![
            0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
            1800.0, 3600.0,
        ]),
        &["phase"],
    )
}

/// The text exposition format of `registry`.
pub(crate) fn render(registry: &Registry) -> String {
    let mut out = Vec::new();
    // Encoding our own well-formed families into a Vec cannot fail.
    let _ = TextEncoder::new().encode(&registry.gather(), &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// Serves `GET /metrics` on `listener` (the text `render` returns on each scrape) until
/// `shutdown` completes. Any other path answers 404.
pub async fn serve<F>(
    listener: tokio::net::TcpListener,
    render: impl Fn() -> String + Send + Sync + 'static,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let render: Arc<dyn Fn() -> String + Send + Sync> = Arc::new(render);
    let app = Router::new().route("/metrics", get(metrics)).with_state(render);
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

async fn metrics(State(render): State<Arc<dyn Fn() -> String + Send + Sync>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], render())
}

/// Whether `value` is a label value these services use: a short snake_case word, never
/// free text (bounded label sets keep the series few).
#[cfg(test)]
pub(crate) fn is_label(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 40
        && value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}
