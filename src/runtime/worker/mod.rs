//! One worker instance: a consumer-group member and a transactional producer running
//! consume → transform → produce, one Kafka transaction per batch.
//!
//! Owns: the Kafka side — batching, the transaction around a batch (outputs, dead letters, parked
//! records, changelog records and input offsets commit together), rewinding after an abort,
//! restoring and dropping the state of assigned and revoked partitions, and re-driving parked
//! records. While a batch's transaction commits (a broker round trip or two), the next batch is
//! collected and its records transformed and encoded ahead on a task of their own
//! (`Preparer::prepare`, which reads no state); they are processed in their own transaction once
//! the first one committed. Must not:
//! decide what a record becomes (the `pipeline` does), or restart itself (the supervisor does).
//!
//! Roles, one file each: this file is the batch cycle, a small state machine ([`Step`]:
//! re-drive, next batch, commit, back off, done) over collect, prepare ahead, commit, abort and
//! rewind; `rebalance` is what assignment and revocation change (the partition set, the state
//! restored and dropped, the lag series); `redrive` sends parked records through again when
//! their reference arrives. Why the cycle is one file of ~650 lines: its steps share the
//! consumer, the producer and the open transaction, and reading them in order is how the
//! exactly-once argument is checked.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use rdkafka::consumer::{Consumer, ConsumerGroupMetadata, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::{FutureProducer, Producer};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::watch;
use tracing::Instrument;
use tracing::{debug, info, info_span, warn};

use crate::config::{KafkaConfig, WorkerConfig};

use super::parking::ParkedEntry;
use super::pipeline::{self, BatchError, Pending, Pipeline, Prepared, Preparer, classify, send};
use super::state;
use super::supervisor::Shared;

mod rebalance;
mod redrive;

use crate::kafka::clients;
use crate::kafka::txn::{self, Outbox};
pub use rebalance::{Assignment, WorkerContext};

/// Prepares `batch` in order, yielding now and then so the other tasks of its runtime thread (other
/// workers, the commit of this one) keep moving.
async fn prepare_all(prep: &Preparer, batch: &[OwnedMessage], now: i64) -> Vec<Prepared> {
    // A transform that reads what earlier records wrote runs in the transaction, in order.
    if prep.transform.reads_own_writes() {
        return Vec::new();
    }
    // With API lookups, records wait on the network, not the CPU: they are prepared
    // concurrently (in order), within the connection's limits.
    if let Some(e) = &prep.enricher {
        use futures::StreamExt;
        let futures: Vec<_> = batch.iter().map(|m| Box::pin(prep.prepare(m, now))).collect();
        return futures::stream::iter(futures)
            .buffered(e.concurrency.max(1))
            .collect()
            .await;
    }
    let mut out = Vec::with_capacity(batch.len());
    for (i, m) in batch.iter().enumerate() {
        out.push(prep.prepare(m, now).await);
        if i % 16 == 15 {
            tokio::task::yield_now().await;
        }
    }
    out
}

/// The span of one record; the pipeline fills in the correlation id once the transform knows it.
fn record_span(m: &OwnedMessage) -> tracing::Span {
    tracing::debug_span!(
        "record",
        topic = m.topic(),
        partition = m.partition(),
        offset = m.offset(),
        correlation_id = tracing::field::Empty
    )
}

const KAFKA_TIMEOUT: Duration = Duration::from_secs(30);

/// A collected batch and its records prepared ahead (same order).
struct Ready {
    batch: Vec<OwnedMessage>,
    prepared: Vec<Prepared>,
}

/// What collecting the next batch during a commit gave.
enum Ahead {
    Batch(Ready),
    /// Nothing arrived within the wait.
    Empty,
    /// Shutdown, or a fatal consumer error (in `fatal`): stop after this commit.
    Stop,
}

/// Where the batch cycle is: the loop in `run` moves from step to step until `Done`.
enum Step {
    /// Re-drive parked records whose reference arrived; then the next batch.
    Redrive,
    /// Take the batch collected ahead, or collect and prepare one.
    Next,
    /// Commit this batch (and collect the one after it meanwhile).
    Commit(Ready),
    /// Wait out the backoff after a failed attempt; then start over.
    Backoff,
    /// Leave the loop with this result.
    Done(Result<(), WorkerError>),
}

/// What the batch cycle carries from step to step.
#[derive(Default)]
struct Cycle {
    /// Failed attempts in a row (reset by a committed batch).
    failures: u32,
    /// The batch collected and prepared while the last one committed.
    ahead: Option<Ready>,
    /// Shutdown or a fatal consumer error was seen while collecting ahead: stop after this commit.
    stopping: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("worker `{worker}`: kafka: {source}")]
    Kafka {
        worker: String,
        #[source]
        source: KafkaError,
    },
    #[error("worker `{worker}`: {source}")]
    Setup {
        worker: String,
        #[source]
        source: pipeline::SetupError,
    },
    #[error("worker `{worker}`: gave up after {attempts} attempts on a transient failure ({code}): {message}")]
    RetriesExhausted {
        worker: String,
        attempts: u32,
        code: String,
        message: String,
    },
}

/// `syncline_worker_up` is 1 while this lives: reset when the worker returns and also when its
/// task unwinds from a panic.
struct UpWhileAlive(prometheus::IntGauge);

impl UpWhileAlive {
    fn new(gauge: prometheus::IntGauge) -> Self {
        gauge.set(1);
        Self(gauge)
    }
}

impl Drop for UpWhileAlive {
    fn drop(&mut self) {
        self.0.set(0);
    }
}

pub struct Worker {
    p: Pipeline,
    kafka: KafkaConfig,
    consumer: StreamConsumer<WorkerContext>,
    producer: FutureProducer,
    assignment: Assignment,
    arrivals: tokio::sync::broadcast::Receiver<String>,
    /// Changelog partitions whose state is loaded.
    restored: HashSet<i32>,
    /// A fatal consumer error seen while collecting: the worker must be rebuilt.
    fatal: Option<KafkaError>,
    /// The last committed batch: some thousand allocations to free, which `fetch_ahead` does
    /// while the next transaction commits instead of on the way to it.
    retired: Vec<OwnedMessage>,
    /// When records parked for a document the API did not find are tried again next.
    enrich_retry_at: Option<tokio::time::Instant>,
}

impl Worker {
    /// Builds the clients (fencing any older producer with the same transactional id) and the
    /// changelog topics; connects, but consumes nothing yet.
    pub async fn new(shared: &Shared, w: &WorkerConfig, instance: &str) -> Result<Self, WorkerError> {
        let t = &*shared.topology;
        let kafka_err = |source| WorkerError::Kafka {
            worker: w.name.clone(),
            source,
        };
        let input_refs: Vec<&str> = w.inputs.iter().map(String::as_str).collect();
        let widest = clients::end_offsets(&t.kafka, &input_refs, KAFKA_TIMEOUT)
            .await
            .map_err(kafka_err)?
            .keys()
            .map(|(_, p)| p + 1)
            .max()
            .unwrap_or(1);
        let setup = |source| WorkerError::Setup {
            worker: w.name.clone(),
            source,
        };
        let ttl = pipeline::Settings::resolve(t, w).map(|s| s.dedupe_ttl).map_err(setup)?;
        state::ensure_changelogs(&t.kafka, &w.name, &pipeline::stores(ttl), widest)
            .await
            .map_err(kafka_err)?;
        let arrivals = shared.xref.arrivals.subscribe();
        let sources = pipeline::Sources {
            xref: shared.xref.clone(),
            enricher: super::enrich::for_worker(w, &shared.apis).map_err(setup)?,
        };
        let p = Pipeline::new(
            t,
            w,
            &shared.catalog,
            shared.codec.clone(),
            shared.metrics.clone(),
            sources,
            widest,
        )
        .map_err(setup)?;
        let assignment = Assignment::default();
        // One id per worker instance: the transactional id fences a zombie producer, the same
        // id as static group member lets a restarted instance resume without a rebalance wait.
        let txn_id = format!("syncline.{}.{instance}", w.name);
        let consumer = clients::read_committed_consumer(
            &t.kafka,
            &format!("syncline.{}", w.name),
            Some(&txn_id),
            WorkerContext {
                assignment: assignment.clone(),
                worker: w.name.clone(),
                metrics: shared.metrics.clone(),
            },
        )
        .map_err(kafka_err)?;
        let producer = clients::transactional_producer(&t.kafka, &txn_id, KAFKA_TIMEOUT)
            .await
            .map_err(kafka_err)?;
        Ok(Self {
            p,
            kafka: t.kafka.clone(),
            consumer,
            producer,
            assignment,
            arrivals,
            restored: HashSet::new(),
            fatal: None,
            retired: Vec::new(),
            enrich_retry_at: None,
        })
    }

    pub fn assignment(&self) -> Assignment {
        self.assignment.clone()
    }

    /// Consumes until `shutdown` turns true. Returns an error the supervisor acts on.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Result<(), WorkerError> {
        let name = self.p.settings.name.clone();
        let topics: Vec<&str> = self.p.settings.inputs.iter().map(String::as_str).collect();
        self.consumer.subscribe(&topics).map_err(|source| WorkerError::Kafka {
            worker: name.clone(),
            source,
        })?;
        // Records whose reference is already in mdm.xref must not be parked for want of it.
        let mut caught_up = self.p.prep.xref.caught_up.clone();
        tokio::select! {
            r = caught_up.wait_for(|ready| *ready) => { let _ = r; }
            _ = shutdown.changed() => return Ok(()),
        }
        let _up = UpWhileAlive::new(self.p.metrics.worker_up.with_label_values(&[&name]));
        info!(worker = %name, "consuming {}", topics.join(", "));
        let mut cycle = Cycle::default();
        let mut step = Step::Redrive;
        let result = loop {
            step = match step {
                Step::Redrive => self.redrive_ready(&mut cycle).await,
                Step::Next => self.next_batch(&mut cycle, &mut shutdown).await,
                Step::Commit(ready) => self.commit_step(ready, &mut cycle, &mut shutdown).await,
                Step::Backoff => {
                    tokio::select! {
                        _ = tokio::time::sleep(self.p.settings.backoff.delay(cycle.failures)) => Step::Redrive,
                        _ = shutdown.changed() => Step::Done(Ok(())),
                    }
                }
                Step::Done(result) => break result,
            };
        };
        self.consumer.unsubscribe();
        info!(worker = %name, "stopped");
        result
    }

    /// Re-drives the parked records whose reference arrived, in a transaction of their own.
    async fn redrive_ready(&mut self, cycle: &mut Cycle) -> Step {
        let ready = self.ready_references();
        if ready.is_empty() {
            return Step::Next;
        }
        let Err(e) = self.redrive(&ready).await else {
            return Step::Next;
        };
        cycle.failures += 1;
        self.p.recheck_parked = true;
        let _ = self.abort().await;
        self.count_txn("aborted");
        if let BatchError::Fatal(source) = e {
            return Step::Done(Err(self.kafka_error(source)));
        }
        warn!(worker = %self.p.settings.name, attempt = cycle.failures, "re-drive aborted, will retry: {e:?}");
        Step::Backoff
    }

    /// The batch collected while the last one committed, or a new one collected and prepared.
    async fn next_batch(&mut self, cycle: &mut Cycle, shutdown: &mut watch::Receiver<bool>) -> Step {
        if let Some(ready) = cycle.ahead.take() {
            return Step::Commit(ready);
        }
        if cycle.stopping {
            return Step::Done(self.stopped());
        }
        let Some(batch) = self.collect(shutdown).await else {
            return Step::Done(self.stopped());
        };
        if batch.is_empty() {
            self.snapshot_when_idle().await;
            return Step::Redrive;
        }
        match self.prepare(batch).await {
            Some(ready) => Step::Commit(ready),
            None => Step::Done(self.stopped()),
        }
    }

    /// Commits `next` (collecting the batch after it meanwhile); on a transient failure aborts,
    /// rewinds both and backs off, unless the retries are exhausted.
    async fn commit_step(&mut self, next: Ready, cycle: &mut Cycle, shutdown: &mut watch::Receiver<bool>) -> Step {
        let name = self.p.settings.name.clone();
        #[cfg(feature = "fault-injection")]
        crate::faults::panic_on_marked(&next.batch);
        let started = Instant::now();
        let span = info_span!("batch", worker = %name, records = next.batch.len());
        let (outcome, fetched) = {
            let _enter = span.enter();
            debug!("committing batch");
            match self
                .commit_batch(&next.batch, None, next.prepared, Some(shutdown))
                .await
            {
                Ok(ahead) => (Ok(()), ahead),
                Err((e, ahead)) => (Err(e), ahead),
            }
        };
        cycle.stopping |= matches!(fetched, Ahead::Stop);
        match outcome {
            Ok(()) => {
                if let Ahead::Batch(r) = fetched {
                    cycle.ahead = Some(r);
                }
                // Freed while the next batch commits, not before it begins.
                self.retired = next.batch;
                cycle.failures = 0;
                self.p
                    .metrics
                    .batch_seconds
                    .with_label_values(&[&name])
                    .observe(started.elapsed().as_secs_f64());
                Step::Redrive
            }
            Err(BatchError::Fatal(e)) => {
                let _ = self.abort().await;
                self.count_txn("aborted");
                Step::Done(Err(self.kafka_error(e)))
            }
            Err(BatchError::Retry { code, message }) => {
                cycle.failures += 1;
                self.p.metrics.retries.with_label_values(&[&name, &code]).inc();
                warn!(worker = %name, attempt = cycle.failures, %code, "batch aborted, will retry: {message}");
                // The batch collected ahead is read again too: rewind to the earliest of both.
                let mut both = next.batch;
                if let Ahead::Batch(r) = fetched {
                    both.extend(r.batch);
                }
                if let Err(e) = self.abort_and_rewind(&both).await {
                    return Step::Done(Err(self.kafka_error(e)));
                }
                if cycle.stopping {
                    return Step::Done(self.stopped());
                }
                if self.p.settings.backoff.exhausted(cycle.failures) {
                    return Step::Done(Err(WorkerError::RetriesExhausted {
                        worker: name,
                        attempts: cycle.failures,
                        code,
                        message,
                    }));
                }
                Step::Backoff
            }
        }
    }

    fn kafka_error(&self, source: KafkaError) -> WorkerError {
        WorkerError::Kafka {
            worker: self.p.settings.name.clone(),
            source,
        }
    }

    /// How the loop ends once collecting stopped: with the fatal consumer error, if that was why.
    fn stopped(&mut self) -> Result<(), WorkerError> {
        match self.fatal.take() {
            Some(source) => Err(self.kafka_error(source)),
            None => Ok(()),
        }
    }

    /// Transforms and encodes every record of `batch` ahead of its transaction, on a task of its
    /// own: the task driving the commit meanwhile moves on from each commit step as soon as it
    /// completes, not at the prepare's next yield. One task, not several: on 2 cores shared with
    /// the broker, splitting a batch over two tasks took the CPU the commit waits on (at 1000
    /// records, syncline's CPU per record rose from ~10–12 to ~13–15 us and its throughput fell
    /// by a fifth). `None` if the task died (it cannot panic by design; if it did, its records
    /// are gone from this batch, so the worker stops and is rebuilt, reading again from the
    /// committed offsets).
    async fn prepare(&mut self, batch: Vec<OwnedMessage>) -> Option<Ready> {
        let now = chrono::Utc::now().timestamp_millis();
        let prep = self.p.prep.clone();
        let task = tokio::spawn(async move {
            let prepared = prepare_all(&prep, &batch, now).await;
            Ready { batch, prepared }
        });
        match task.await {
            Ok(ready) => Some(ready),
            Err(e) => {
                warn!(worker = %self.p.settings.name, error = %e, "preparing records failed; rebuilding the worker");
                self.fatal = Some(KafkaError::Canceled);
                None
            }
        }
    }

    /// Up to `max_records` records, or fewer once `max_wait` passed since the first one.
    /// `None` on shutdown: a batch being collected holds no open transaction and is dropped;
    /// its records are read again after restart.
    async fn collect(&mut self, shutdown: &mut watch::Receiver<bool>) -> Option<Vec<OwnedMessage>> {
        let mut batch = Vec::new();
        let mut deadline: Option<tokio::time::Instant> = None;
        loop {
            if *shutdown.borrow() {
                return None;
            }
            let wait = match deadline {
                Some(d) => d.saturating_duration_since(tokio::time::Instant::now()),
                None => Duration::from_millis(500),
            };
            tokio::select! {
                _ = shutdown.changed() => return None,
                r = tokio::time::timeout(wait, self.consumer.recv()) => match r {
                    Ok(Ok(m)) => {
                        batch.push(m.detach());
                        if deadline.is_none() {
                            deadline = Some(tokio::time::Instant::now() + self.p.settings.max_wait);
                        }
                        if batch.len() >= self.p.settings.max_records {
                            return Some(batch);
                        }
                    }
                    Ok(Err(e @ KafkaError::MessageConsumptionFatal(_))) => {
                        // E.g. a static member fenced after a coordinator restart: this consumer
                        // is done; the supervisor builds a new one, which rejoins the group.
                        self.fatal = Some(e);
                        return None;
                    }
                    Ok(Err(e)) => {
                        // librdkafka reconnects by itself; this is information, not a failure.
                        warn!(worker = %self.p.settings.name, error = %e, "consumer error");
                        if !batch.is_empty() {
                            return Some(batch);
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    // Time is up: the batch (possibly empty) goes back to the loop.
                    Err(_) => return Some(batch),
                },
            }
        }
    }

    /// One transaction over `batch`. With `redrive`, the records are parked ones read back: their
    /// parked entries are removed in the same transaction and no input offsets are committed.
    /// `prepared` holds the batch's records prepared ahead (empty: prepared inline); with
    /// `prefetch`, the next batch is collected and prepared while this one commits, and returned
    /// (with the error too, so that a rewind covers it).
    async fn commit_batch(
        &mut self,
        batch: &[OwnedMessage],
        redrive: Option<&[ParkedEntry]>,
        prepared: Vec<Prepared>,
        prefetch: Option<&mut watch::Receiver<bool>>,
    ) -> Result<Ahead, (BatchError, Ahead)> {
        let nothing = |e| (e, Ahead::Empty);
        self.forget_revoked();
        self.restore(batch).await.map_err(nothing)?;
        let now = chrono::Utc::now().timestamp_millis();
        self.p.dedupe.expire(now);
        self.producer.begin_transaction().map_err(|e| nothing(classify(e)))?;
        let producer = self.producer.clone();
        let mut outbox = Outbox::new(&producer);
        let mut pending = Pending::for_batch(batch.len());
        self.process_batch(batch, redrive, prepared, now, &mut outbox, &mut pending)
            .await
            .map_err(nothing)?;
        // Re-driven records were consumed long ago: no offsets. (Adding the offsets at the start
        // of the transaction, while the records are processed, measured a third slower.)
        let offsets = match redrive {
            None if !batch.is_empty() => Some(self.next_offsets(batch).map_err(nothing)?),
            _ => None,
        };
        // Deliveries, offsets and the commit wait on the broker; meanwhile the next batch is
        // collected here and prepared on a task of its own.
        let finish = async {
            txn::commit(&producer, outbox, offsets, KAFKA_TIMEOUT)
                .await
                .map_err(classify)?;
            Ok::<_, BatchError>(chrono::Utc::now().timestamp_millis())
        };
        let (finished, ahead) = match prefetch {
            Some(shutdown) => tokio::join!(finish, self.fetch_ahead(shutdown)),
            None => (finish.await, Ahead::Empty),
        };
        let committed_at = match finished {
            Ok(at) => at,
            Err(e) => return Err((e, ahead)),
        };
        self.count_txn("committed");
        let e2e = self
            .p
            .metrics
            .end_to_end_seconds
            .with_label_values(&[&self.p.settings.name]);
        for ts in batch.iter().filter_map(|m| m.timestamp().to_millis()) {
            e2e.observe((committed_at - ts).max(0) as f64 / 1000.0);
        }
        self.p.apply(pending);
        Ok(ahead)
    }

    /// With no input flowing, ledger changes still reach the ledger's changelog within a
    /// snapshot interval: the state records holding them meanwhile expire with the idempotency
    /// window. A transaction with no records carries the snapshot; a failure waits for the next
    /// idle moment.
    async fn snapshot_when_idle(&mut self) {
        if !self.p.statuses.snapshot_waiting() {
            return;
        }
        if let Err((e, _)) = self.commit_batch(&[], None, Vec::new(), None).await {
            warn!(worker = %self.p.settings.name, "ledger snapshot aborted, will retry: {e:?}");
            let _ = self.abort().await;
            self.count_txn("aborted");
        }
    }

    /// Decides and sends every record of `batch` into the open transaction, then its state record.
    async fn process_batch(
        &mut self,
        batch: &[OwnedMessage],
        redrive: Option<&[ParkedEntry]>,
        prepared: Vec<Prepared>,
        now: i64,
        outbox: &mut Outbox<'_>,
        pending: &mut Pending,
    ) -> Result<(), BatchError> {
        let processing = self
            .p
            .metrics
            .processing_seconds
            .with_label_values(&[&self.p.settings.name]);
        let mut prepared = prepared.into_iter();
        for m in batch {
            let ahead = prepared.next();
            // A re-driven record leaves its parked entry in the same transaction.
            if let Some(entries) = redrive {
                let coord = (m.topic().to_string(), m.partition(), m.offset());
                if let Some(e) = entries.iter().find(|e| e.coordinates() == coord) {
                    let cp = e.partition % self.p.changelog_partitions;
                    send(
                        outbox,
                        &self.p.parked_changelog,
                        Some(cp),
                        Some(&e.changelog_key()),
                        None,
                        &[],
                    )
                    .await?;
                    pending.parked_changes.push((coord, None));
                    pending.redriven += 1;
                }
            }
            let started = Instant::now();
            self.p
                .process(m, now, redrive.is_some(), ahead, outbox, pending)
                .instrument(record_span(m))
                .await?;
            processing.observe(started.elapsed().as_secs_f64());
        }
        let batch_id = batch
            .first()
            .map(|m| format!("{}-{}-{}", m.topic(), m.partition(), m.offset()))
            .unwrap_or_default();
        self.p.flush_state(&batch_id, outbox, pending).await?;
        Ok(())
    }

    /// The offsets to commit with `batch` (each partition's next record) and the group they are for.
    fn next_offsets(&self, batch: &[OwnedMessage]) -> Result<(TopicPartitionList, ConsumerGroupMetadata), BatchError> {
        let mut next: BTreeMap<(&str, i32), i64> = BTreeMap::new();
        for m in batch {
            let o = next.entry((m.topic(), m.partition())).or_insert(0);
            *o = (*o).max(m.offset() + 1);
        }
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), offset) in next {
            tpl.add_partition_offset(topic, partition, Offset::Offset(offset))
                .map_err(classify)?;
        }
        let group = self.consumer.group_metadata().ok_or_else(|| BatchError::Retry {
            code: "NO_GROUP".into(),
            message: "consumer has no group metadata yet".into(),
        })?;
        Ok((tpl, group))
    }

    /// The next batch, collected and prepared while the current one commits.
    async fn fetch_ahead(&mut self, shutdown: &mut watch::Receiver<bool>) -> Ahead {
        drop(std::mem::take(&mut self.retired));
        match self.collect(shutdown).await {
            None => Ahead::Stop,
            Some(batch) if batch.is_empty() => Ahead::Empty,
            Some(batch) => match self.prepare(batch).await {
                Some(ready) => Ahead::Batch(ready),
                None => Ahead::Stop,
            },
        }
    }

    fn count_txn(&self, outcome: &str) {
        self.p
            .metrics
            .transactions
            .with_label_values(&[&self.p.settings.name, outcome])
            .inc();
    }

    /// Aborts the open transaction and seeks each partition back to the batch's first record,
    /// so the next attempt reads the same records again.
    /// Aborts the open transaction, off the async threads.
    async fn abort(&self) -> Result<(), KafkaError> {
        let producer = self.producer.clone();
        clients::off_thread(move || producer.abort_transaction(KAFKA_TIMEOUT)).await
    }

    async fn abort_and_rewind(&mut self, batch: &[OwnedMessage]) -> Result<(), KafkaError> {
        if let Err(e) = self.abort().await {
            // Aborting with no transaction open is fine; anything fatal is not.
            if let KafkaError::Transaction(rde) = &e
                && rde.is_fatal()
            {
                return Err(e);
            }
            debug!(error = %e, "abort");
        }
        self.count_txn("aborted");
        let mut first: BTreeMap<(&str, i32), i64> = BTreeMap::new();
        for m in batch {
            first.entry((m.topic(), m.partition())).or_insert(m.offset());
        }
        let assigned = self.assignment.assigned();
        for ((topic, partition), offset) in first {
            if !assigned.contains(&(topic.to_string(), partition)) {
                continue; // revoked: its new owner starts from the committed offset
            }
            if let Err(e) = self
                .consumer
                .seek(topic, partition, Offset::Offset(offset), Duration::from_secs(10))
            {
                warn!(topic, partition, offset, error = %e, "seek back failed");
            }
        }
        Ok(())
    }
}
