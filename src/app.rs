//! The one way to start syncline in a process: the cross-reference feed, the codec, the
//! metrics, the supervised workers, and optionally the tracker and the HTTP endpoint.
//! `syncline run`, the demo, the integration tests and the benchmark all start through
//! [`Process::start`], so what they run is what users run.
//!
//! Owns: the start-up order (the xref feed before the workers, the endpoint before readiness
//! matters) and the shutdown fan-out. Must not: handle signals or print (the command line does).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{error, info};

use crate::config::Topology;
use crate::ops::http;
use crate::runtime::supervisor::{self, Health, Shared, SupervisorError};
use crate::runtime::xref_feed;
use crate::schema::registry::{self, RegistryError};
use crate::schema::{Catalog, Codec};
use crate::telemetry::Metrics;

/// What to start besides the workers.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Only these workers (all when empty).
    pub workers: Vec<String>,
    /// The instance id: part of every transactional id and static group membership id.
    pub instance: String,
    /// Run the business transaction tracker in this process (when the topology enables it).
    pub tracker: bool,
    /// Serve `/metrics`, `/healthz` and `/readyz` here (port 0 picks a free one).
    pub http: Option<SocketAddr>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("kafka: cannot follow the cross-reference topic: {0}")]
    Xref(#[from] rdkafka::error::KafkaError),
    #[error("cannot listen on {addr} for /metrics: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Workers(#[from] SupervisorError),
    #[error(transparent)]
    Api(#[from] crate::api::ApiSetupError),
}

/// A started process: its metrics and health, and the handle that stops it.
pub struct Process {
    pub metrics: Arc<Metrics>,
    pub health: Health,
    /// Where the HTTP endpoint listens, if one was asked for.
    pub http: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    workers: JoinHandle<Result<(), SupervisorError>>,
}

impl Process {
    pub async fn start(topology: Topology, catalog: Arc<Catalog>, opts: Options) -> Result<Self, StartError> {
        let metrics = Arc::new(Metrics::new()?);
        let codec = Arc::new(
            Codec::new(registry::sr_settings(&topology.registry)?)
                .with_request_counter(metrics.registry_requests.clone()),
        );
        let (stop, shutdown) = watch::channel(false);
        supervisor::check_selection(&topology, &opts.workers)?;
        let xref = xref_feed::start(
            &topology.kafka,
            &topology.defaults.xref_topic,
            metrics.accounts_in_state.clone(),
            shutdown.clone(),
        )
        .await?;
        let apis = crate::runtime::enrich::connect(&topology, &metrics)?;
        let health = Health::default();
        let bound = match opts.http {
            Some(addr) => Some(
                http::serve(addr, metrics.clone(), health.clone(), shutdown.clone())
                    .await
                    .map_err(|source| StartError::Listen { addr, source })?,
            ),
            None => None,
        };
        if let Some(bound) = bound {
            info!("metrics and health on http://{bound}/metrics, /healthz, /readyz");
        }
        let shared = Shared {
            topology: Arc::new(topology),
            catalog,
            codec,
            metrics: metrics.clone(),
            health: health.clone(),
            xref,
            apis,
        };
        if opts.tracker && shared.topology.tracker.enabled {
            let (t, catalog, codec, metrics, stop) = (
                shared.topology.clone(),
                shared.catalog.clone(),
                shared.codec.clone(),
                shared.metrics.clone(),
                shutdown.clone(),
            );
            tokio::spawn(async move {
                if let Err(e) = crate::ops::tracker::run(t, catalog, codec, metrics, stop).await {
                    error!(error = %e, "business transaction tracker stopped");
                }
            });
        }
        let (workers, instance) = (opts.workers, opts.instance);
        let task = tokio::spawn(async move { supervisor::run(shared, &workers, &instance, shutdown).await });
        Ok(Self {
            metrics,
            health,
            http: bound,
            stop,
            workers: task,
        })
    }

    /// Asks every worker to finish its open transaction and stop.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Waits until every worker stopped (after [`Process::stop`], or a signal handler's).
    pub async fn wait(self) -> Result<(), SupervisorError> {
        self.workers
            .await
            .unwrap_or_else(|e| Err(SupervisorError::Ended(e.to_string())))
    }

    /// A sender that stops the process, for a signal handler running elsewhere.
    pub fn stopper(&self) -> watch::Sender<bool> {
        self.stop.clone()
    }
}
