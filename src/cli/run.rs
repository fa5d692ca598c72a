//! `syncline run`: the workers of a topology, until SIGINT or SIGTERM.

use std::path::Path;
use std::sync::Arc;

use tracing::info;

use crate::app::{Options, Process};
use crate::config::Topology;
use crate::schema::Catalog;

use super::CliError;

pub async fn run(
    t: Topology,
    schema_dir: &Path,
    workers: &[String],
    instance: &str,
    no_tracker: bool,
) -> Result<(), CliError> {
    let catalog = Arc::new(Catalog::load(schema_dir)?);
    let listen: std::net::SocketAddr = t
        .metrics
        .listen
        .parse()
        .map_err(|e| CliError::Failed(format!("metrics.listen `{}`: {e}", t.metrics.listen)))?;
    let process = Process::start(
        t,
        catalog,
        Options {
            workers: workers.to_vec(),
            instance: instance.to_string(),
            tracker: !no_tracker,
            http: Some(listen),
        },
    )
    .await?;
    let stop = process.stopper();
    tokio::spawn(async move {
        wait_for_signal().await;
        info!("shutting down: finishing the open transactions");
        let _ = stop.send(true);
    });
    Ok(process.wait().await?)
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
