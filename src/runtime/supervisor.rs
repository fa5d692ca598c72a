//! Runs the selected workers as independent tokio tasks and restarts a failed one with backoff,
//! without stopping the others.
//!
//! Owns: worker lifecycles, their health as `/readyz` reports it, and shutdown fan-out. Must
//! not: touch records.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{error, info};

use crate::config::Topology;
use crate::ops::metrics::Metrics;
use crate::schema::{Catalog, Codec};

use super::retry::Backoff;
use super::worker::{Assignment, Worker, WorkerError};

/// Lifecycle of one worker instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerState {
    Starting,
    Running,
    /// Restarting after an error (the message says which).
    Restarting(String),
    /// Gave up on a transient failure: consumes nothing until restarted by an operator.
    Stopped(String),
}

#[derive(Clone, Default)]
struct Entry {
    state: Option<WorkerState>,
    assignment: Option<Assignment>,
}

/// Shared view of every worker instance, for health checks.
#[derive(Clone, Default)]
pub struct Health {
    inner: Arc<Mutex<BTreeMap<String, Entry>>>,
}

impl Health {
    fn set(&self, id: &str, state: WorkerState, assignment: Option<Assignment>) {
        if let Ok(mut m) = self.inner.lock() {
            let e = m.entry(id.to_string()).or_default();
            e.state = Some(state);
            if assignment.is_some() {
                e.assignment = assignment;
            }
        }
    }

    /// `(instance, state, assigned partition count)` of every worker instance.
    pub fn snapshot(&self) -> Vec<(String, WorkerState, usize)> {
        self.inner
            .lock()
            .map(|m| {
                m.iter()
                    .map(|(k, e)| {
                        let n = e.assignment.as_ref().map(|a| a.assigned().len()).unwrap_or(0);
                        (k.clone(), e.state.clone().unwrap_or(WorkerState::Starting), n)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Ready: every instance running with partitions assigned, none stopped.
    pub fn ready(&self) -> bool {
        let snap = self.snapshot();
        !snap.is_empty() && snap.iter().all(|(_, s, n)| *s == WorkerState::Running && *n > 0)
    }
}

/// Everything a worker needs from the process.
#[derive(Clone)]
pub struct Shared {
    pub topology: Arc<Topology>,
    pub catalog: Arc<Catalog>,
    pub codec: Arc<Codec>,
    pub metrics: Arc<Metrics>,
    pub health: Health,
    pub xref: super::xref_feed::Xref,
}

/// Runs `workers` (all when empty) until `shutdown` turns true.
pub async fn run(
    shared: Shared,
    workers: &[String],
    instance: &str,
    shutdown: watch::Receiver<bool>,
) -> Result<(), String> {
    let selected: Vec<_> = shared
        .topology
        .workers
        .iter()
        .filter(|w| workers.is_empty() || workers.contains(&w.name))
        .cloned()
        .collect();
    if let Some(unknown) = workers
        .iter()
        .find(|n| !shared.topology.workers.iter().any(|w| &w.name == *n))
    {
        let known: Vec<&str> = shared.topology.workers.iter().map(|w| w.name.as_str()).collect();
        return Err(format!("no worker named `{unknown}`; workers: {}", known.join(", ")));
    }
    let mut tasks = JoinSet::new();
    for w in selected {
        for i in 0..w.concurrency {
            let id = if w.concurrency == 1 {
                instance.to_string()
            } else {
                format!("{instance}-{i}")
            };
            let (shared, w, shutdown) = (shared.clone(), w.clone(), shutdown.clone());
            tasks.spawn(async move { supervise(shared, w, id, shutdown).await });
        }
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

async fn supervise(
    shared: Shared,
    w: crate::config::WorkerConfig,
    instance: String,
    mut shutdown: watch::Receiver<bool>,
) {
    let id = format!("{}/{instance}", w.name);
    let backoff = Backoff {
        initial: Duration::from_millis(500),
        max: Duration::from_secs(30),
        max_attempts: 0,
    };
    let mut restarts = 0u32;
    loop {
        if *shutdown.borrow() {
            break;
        }
        shared.health.set(&id, WorkerState::Starting, None);
        let built = Worker::new(
            &shared.topology,
            &w,
            &instance,
            &shared.catalog,
            shared.codec.clone(),
            shared.metrics.clone(),
            shared.xref.clone(),
        )
        .await;
        let outcome = match built {
            Ok(worker) => {
                shared.health.set(&id, WorkerState::Running, Some(worker.assignment()));
                restarts = 0;
                worker.run(shutdown.clone()).await
            }
            Err(e) => Err(e),
        };
        match outcome {
            Ok(()) => break,
            Err(e @ WorkerError::RetriesExhausted { .. }) => {
                error!(worker = %id, "{e}; the worker stays stopped and reports unhealthy");
                shared.health.set(&id, WorkerState::Stopped(e.to_string()), None);
                return;
            }
            Err(e) => {
                restarts += 1;
                error!(worker = %id, restarts, "{e}; restarting");
                shared.health.set(&id, WorkerState::Restarting(e.to_string()), None);
                tokio::select! {
                    _ = tokio::time::sleep(backoff.delay(restarts)) => {}
                    _ = shutdown.changed() => break,
                }
            }
        }
    }
    info!(worker = %id, "worker finished");
}
