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
use crate::schema::{Catalog, Codec};
use crate::telemetry::Metrics;

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
    /// The API connections, shared by the workers that enrich.
    pub apis: super::enrich::Apis,
}

/// Why supervision could not run.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("no worker named `{name}`; workers: {known}")]
    UnknownWorker { name: String, known: String },
    /// The supervision task itself ended abnormally (it holds no code that panics).
    #[error("the worker supervisor ended abnormally: {0}")]
    Ended(String),
}

/// Checks that every name in `workers` is a worker of `topology`.
pub fn check_selection(topology: &Topology, workers: &[String]) -> Result<(), SupervisorError> {
    match workers.iter().find(|n| !topology.workers.iter().any(|w| &w.name == *n)) {
        Some(unknown) => Err(SupervisorError::UnknownWorker {
            name: unknown.clone(),
            known: topology
                .workers
                .iter()
                .map(|w| w.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }),
        None => Ok(()),
    }
}

/// Runs `workers` (all when empty) until `shutdown` turns true.
pub async fn run(
    shared: Shared,
    workers: &[String],
    instance: &str,
    shutdown: watch::Receiver<bool>,
) -> Result<(), SupervisorError> {
    check_selection(&shared.topology, workers)?;
    let selected: Vec<_> = shared
        .topology
        .workers
        .iter()
        .filter(|w| workers.is_empty() || workers.contains(&w.name))
        .cloned()
        .collect();
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
    while let Some(done) = tasks.join_next().await {
        // Supervision itself holds no code that panics; if it ever did, say so.
        if let Err(e) = done {
            error!(error = %e, "a worker supervisor ended abnormally");
        }
    }
    Ok(())
}

/// Why one attempt of a worker ended.
enum Ended {
    Finished,
    /// With whether the worker had been built (and ran) before it failed.
    Failed(WorkerError, bool),
    /// The worker's task panicked (a bug): treated like a failure, with the panic's message.
    Panicked(String),
}

/// Builds and runs one worker on a task of its own, so that a panic ends this attempt only and
/// the supervisor sees it (a panic on the supervisor's own task would end the supervision).
async fn attempt(
    shared: &Shared,
    w: &crate::config::WorkerConfig,
    id: &str,
    instance: &str,
    shutdown: &watch::Receiver<bool>,
) -> Ended {
    let (shared, w, id, instance, shutdown) = (
        shared.clone(),
        w.clone(),
        id.to_string(),
        instance.to_string(),
        shutdown.clone(),
    );
    let task = tokio::spawn(async move {
        let built = Worker::new(&shared, &w, &instance).await;
        let worker = match built {
            Ok(worker) => worker,
            Err(e) => return Err((e, false)),
        };
        shared.health.set(&id, WorkerState::Running, Some(worker.assignment()));
        worker.run(shutdown).await.map_err(|e| (e, true))
    });
    match task.await {
        Ok(Ok(())) => Ended::Finished,
        Ok(Err((e, built))) => Ended::Failed(e, built),
        Err(e) if e.is_panic() => Ended::Panicked(panic_message(e.into_panic())),
        Err(e) => Ended::Panicked(e.to_string()),
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// The `reason` label of a restart.
fn restart_reason(e: &WorkerError) -> &'static str {
    match e {
        WorkerError::Kafka { .. } => "kafka",
        WorkerError::Setup { .. } => "setup",
        WorkerError::RetriesExhausted { .. } => "retries_exhausted",
    }
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
        let (reason, why, built) = match attempt(&shared, &w, &id, &instance, &shutdown).await {
            Ended::Finished => break,
            Ended::Failed(e @ WorkerError::RetriesExhausted { .. }, _) => {
                error!(worker = %id, "{e}; the worker stays stopped and reports unhealthy");
                shared.health.set(&id, WorkerState::Stopped(e.to_string()), None);
                return;
            }
            Ended::Failed(e, built) => (restart_reason(&e), e.to_string(), built),
            Ended::Panicked(message) => ("panic", format!("worker `{}` panicked: {message}", w.name), true),
        };
        // A worker that was built and ran starts over at the shortest backoff; one that cannot
        // even be built backs off further each time.
        if built {
            restarts = 0;
        }
        restarts += 1;
        shared
            .metrics
            .worker_restarts
            .with_label_values(&[&w.name, reason])
            .inc();
        error!(worker = %id, restarts, reason, "{why}; restarting");
        shared.health.set(&id, WorkerState::Restarting(why), None);
        tokio::select! {
            _ = tokio::time::sleep(backoff.delay(restarts)) => {}
            _ = shutdown.changed() => break,
        }
    }
    info!(worker = %id, "worker finished");
}
