//! `syncline run`: the workers of a topology, until SIGINT or SIGTERM.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::watch;
use tracing::info;

use crate::config::Topology;
use crate::ops::http;
use crate::runtime::supervisor::{self, Health, Shared};
use crate::runtime::xref_feed;
use crate::schema::registry;
use crate::schema::{Catalog, Codec};
use crate::telemetry::Metrics;

use super::CliError;

pub async fn run(
    t: Topology,
    schema_dir: &Path,
    workers: &[String],
    instance: &str,
    no_tracker: bool,
) -> Result<(), CliError> {
    let catalog = Arc::new(Catalog::load(schema_dir)?);
    let metrics = Arc::new(Metrics::new().map_err(|e| CliError::Failed(format!("metrics: {e}")))?);
    let codec = Arc::new(
        Codec::new(registry::sr_settings(&t.registry)?).with_request_counter(metrics.registry_requests.clone()),
    );
    let (stop, shutdown) = watch::channel(false);
    let xref = xref_feed::start(&t.kafka, &t.defaults.xref_topic, shutdown.clone()).await?;
    let health = Health::default();
    let listen: std::net::SocketAddr = t
        .metrics
        .listen
        .parse()
        .map_err(|e| CliError::Failed(format!("metrics.listen `{}`: {e}", t.metrics.listen)))?;
    let bound = http::serve(listen, metrics.clone(), health.clone(), shutdown.clone())
        .await
        .map_err(|e| CliError::Failed(format!("cannot listen on {listen} for /metrics: {e}")))?;
    info!("metrics and health on http://{bound}/metrics, /healthz, /readyz");
    let shared = Shared {
        topology: Arc::new(t),
        catalog,
        codec,
        metrics,
        health,
        xref,
    };
    tokio::spawn(async move {
        wait_for_signal().await;
        info!("shutting down: finishing the open transactions");
        let _ = stop.send(true);
    });
    if shared.topology.tracker.enabled && !no_tracker {
        let (t, catalog, codec, metrics, stop) = (
            shared.topology.clone(),
            shared.catalog.clone(),
            shared.codec.clone(),
            shared.metrics.clone(),
            shutdown.clone(),
        );
        tokio::spawn(async move {
            if let Err(e) = crate::ops::tracker::run(t, catalog, codec, metrics, stop).await {
                tracing::error!(error = %e, "business transaction tracker stopped");
            }
        });
    }
    supervisor::run(shared, workers, instance, shutdown)
        .await
        .map_err(CliError::Failed)
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
