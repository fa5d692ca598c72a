//! The operator HTTP endpoint: `/metrics` (Prometheus text), `/healthz` (process alive) and
//! `/readyz` (every worker running with partitions assigned, none stopped).
//!
//! Owns: the listener and the three routes. Must not: bind anything but the configured address
//! (loopback by default: metrics reveal business volumes).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus::{Encoder, TextEncoder};
use tokio::sync::watch;

use crate::runtime::supervisor::{Health, WorkerState};

use crate::telemetry::Metrics;

#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    health: Health,
}

/// Serves until `shutdown` turns true. Returns the bound address (port 0 picks a free one).
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    health: Health,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<SocketAddr> {
    let app = Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(AppState { metrics, health });
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        let stop = async move {
            let _ = shutdown.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stop).await {
            tracing::error!(error = %e, "metrics endpoint stopped");
        }
    });
    Ok(bound)
}

async fn metrics_text(State(s): State<AppState>) -> impl IntoResponse {
    let mut buf = Vec::new();
    match TextEncoder::new().encode(&s.metrics.registry.gather(), &mut buf) {
        Ok(()) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            buf,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn ready(State(s): State<AppState>) -> impl IntoResponse {
    let snapshot = s.health.snapshot();
    let workers: Vec<serde_json::Value> = snapshot
        .iter()
        .map(|(id, state, partitions)| {
            let (state, detail) = match state {
                WorkerState::Starting => ("starting", String::new()),
                WorkerState::Running => ("running", String::new()),
                WorkerState::Restarting(why) => ("restarting", why.clone()),
                WorkerState::Stopped(why) => ("stopped", why.clone()),
            };
            serde_json::json!({ "worker": id, "state": state, "partitions": partitions, "detail": detail })
        })
        .collect();
    let status = if s.health.ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        axum::Json(serde_json::json!({ "ready": status == StatusCode::OK, "workers": workers })),
    )
}
