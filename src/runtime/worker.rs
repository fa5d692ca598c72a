//! One worker instance: a consumer-group member and a transactional producer running
//! consume → transform → produce, one Kafka transaction per batch.
//!
//! Owns: batching, the per-record decision (output, duplicate, dead letter, held, parked), the
//! transaction around a batch (outputs, dead letters, parked records, changelog records and input
//! offsets commit together), rewinding after an abort, and the state stores of its partitions.
//! Must not: parse payloads or map fields (the transform does), or restart itself (the
//! supervisor does).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::producer::{FutureProducer, Producer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::watch;
use tracing::{debug, info, info_span, warn};

use crate::adapters::RawRecord;
use crate::config::{self, KafkaConfig, Topology, WorkerConfig};
use crate::failure::{ErrorClass, Failure};
use crate::ops::metrics::Metrics;
use crate::schema::canonical::CanonicalRecord;
use crate::schema::{Catalog, Codec, SchemaVersion};
use crate::transforms::{self, Context, Transform, Transformed};

use super::clients;
use super::dedupe::{self, DedupeStore, Fingerprint};
use super::dlq::{self, HeldEntry, HeldKeys, header};
use super::parking::{ParkedEntry, ParkedStore};
use super::retry::Backoff;
use super::state;
use super::status::{self, StatusStore};
use super::txn::{Out, Outbox};
use super::xref_feed::Xref;

const KAFKA_TIMEOUT: Duration = Duration::from_secs(30);
const DEDUPE_STORE: &str = "dedupe";
const HELD_STORE: &str = "held";
const PARKED_STORE: &str = "parked";
const STATUS_STORE: &str = "status";

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("worker `{worker}`: kafka: {source}")]
    Kafka {
        worker: String,
        #[source]
        source: KafkaError,
    },
    #[error("worker `{worker}`: {message}")]
    Setup { worker: String, message: String },
    #[error("worker `{worker}`: gave up after {attempts} attempts on a transient failure ({code}): {message}")]
    RetriesExhausted {
        worker: String,
        attempts: u32,
        code: String,
        message: String,
    },
}

/// Why a batch did not commit.
#[derive(Debug)]
enum BatchError {
    /// Abort, rewind, back off, try again.
    Retry { code: String, message: String },
    /// The producer or consumer is unusable: the supervisor builds a new worker.
    Fatal(KafkaError),
}

fn classify(e: KafkaError) -> BatchError {
    match &e {
        KafkaError::Transaction(rde) if rde.is_fatal() => BatchError::Fatal(e),
        _ => BatchError::Retry {
            code: "KAFKA".into(),
            message: e.to_string(),
        },
    }
}

/// Settings of one worker with the topology defaults applied.
#[derive(Debug, Clone)]
pub struct Settings {
    pub name: String,
    pub inputs: Vec<String>,
    pub max_records: usize,
    pub max_wait: Duration,
    pub backoff: Backoff,
    pub dedupe_ttl: Duration,
    pub dedupe_max_entries: usize,
    pub sequenced_dead_letters: bool,
    pub dead_letter_topic: String,
    pub parked_topic: String,
}

impl Settings {
    pub fn resolve(t: &Topology, w: &WorkerConfig) -> Result<Self, String> {
        let batch = w.batch.as_ref().unwrap_or(&t.defaults.batch);
        let retry = w.retry.as_ref().unwrap_or(&t.defaults.retry);
        let dedupe = w.dedupe.as_ref().unwrap_or(&t.defaults.dedupe);
        Ok(Self {
            name: w.name.clone(),
            inputs: w.inputs.clone(),
            max_records: batch.max_records,
            max_wait: config::duration(&batch.max_wait)?,
            backoff: Backoff {
                initial: config::duration(&retry.initial_backoff)?,
                max: config::duration(&retry.max_backoff)?,
                max_attempts: retry.max_attempts,
            },
            dedupe_ttl: config::duration(&dedupe.ttl)?,
            dedupe_max_entries: dedupe.max_entries,
            sequenced_dead_letters: w.sequenced_dead_letters,
            dead_letter_topic: t.defaults.dead_letter_topic.clone(),
            parked_topic: t.defaults.parked_topic.clone(),
        })
    }
}

/// Where one named output goes and with which schema.
struct Output {
    topic: Option<String>,
    route_by: Option<String>,
    routes: BTreeMap<String, String>,
    schema: SchemaVersion,
}

impl Output {
    fn topic_for(&self, record: &CanonicalRecord) -> Result<&str, Failure> {
        let Some(field) = &self.route_by else {
            return self
                .topic
                .as_deref()
                .ok_or_else(|| Failure::business("UNKNOWN_ROUTE", "output has no topic"));
        };
        let value = record.route_value(field).unwrap_or_default();
        self.routes
            .get(value)
            .map(String::as_str)
            .or(self.topic.as_deref())
            .ok_or_else(|| {
                let code = match field.as_str() {
                    "legal_entity" => "UNKNOWN_LEGAL_ENTITY",
                    "sales_org" => "UNKNOWN_SALES_ORG",
                    _ => "UNKNOWN_ROUTE",
                };
                Failure::business(
                    code,
                    format!(
                        "no route for {field} `{value}`; routed values: {}",
                        self.routes.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                )
            })
    }
}

/// Partition assignment as the rebalance callbacks report it.
#[derive(Clone, Default)]
pub struct Assignment {
    inner: Arc<Mutex<AssignmentState>>,
}

#[derive(Default)]
struct AssignmentState {
    assigned: BTreeSet<(String, i32)>,
    revoked: Vec<(String, i32)>,
}

impl Assignment {
    pub fn assigned(&self) -> BTreeSet<(String, i32)> {
        self.inner.lock().map(|s| s.assigned.clone()).unwrap_or_default()
    }

    fn take_revoked(&self) -> Vec<(String, i32)> {
        self.inner
            .lock()
            .map(|mut s| std::mem::take(&mut s.revoked))
            .unwrap_or_default()
    }
}

pub struct WorkerContext {
    assignment: Assignment,
    worker: String,
    metrics: Arc<Metrics>,
}

impl ClientContext for WorkerContext {
    /// librdkafka's statistics carry the consumer lag of every assigned partition.
    fn stats(&self, stats: rdkafka::Statistics) {
        for (topic, t) in &stats.topics {
            for (partition, p) in &t.partitions {
                if p.partition >= 0 && p.consumer_lag >= 0 {
                    self.metrics
                        .consumer_lag
                        .with_label_values(&[&self.worker, topic, &partition.to_string()])
                        .set(p.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for WorkerContext {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Ok(mut s) = self.assignment.inner.lock() else {
            return;
        };
        match rebalance {
            Rebalance::Assign(tpl) => {
                for e in tpl.elements() {
                    s.assigned.insert((e.topic().to_string(), e.partition()));
                }
            }
            Rebalance::Revoke(tpl) => {
                for e in tpl.elements() {
                    let tp = (e.topic().to_string(), e.partition());
                    s.assigned.remove(&tp);
                    s.revoked.push(tp);
                }
            }
            Rebalance::Error(e) => warn!(error = %e, "rebalance error"),
        }
    }
}

/// (topic, partition, offset) of a source record.
type Coordinates = (String, i32, i64);

/// What a batch changed, applied to the stores and metrics only once it committed.
#[derive(Default)]
struct Pending {
    fingerprints: HashMap<Fingerprint, (i32, i64)>,
    /// Held-key changes (None = released), applied in order after the commit.
    held: HashMap<Vec<u8>, Option<(i32, HeldEntry)>>,
    released: u64,
    consumed: HashMap<String, u64>,
    produced: HashMap<String, u64>,
    failed: HashMap<(String, &'static str, &'static str), u64>,
    dead_letters: HashMap<&'static str, u64>,
    duplicates: u64,
    held_count: u64,
    statuses: HashMap<String, (i32, status::Current)>,
    stale: u64,
    parked: u64,
    /// Parked-store changes in order (None = re-driven, removed).
    parked_changes: Vec<(Coordinates, Option<(i32, ParkedEntry)>)>,
    /// Keys parked in this batch, and on which reference.
    parked_keys: HashMap<Vec<u8>, String>,
    redriven: u64,
}

pub struct Worker {
    settings: Settings,
    kafka: KafkaConfig,
    consumer: StreamConsumer<WorkerContext>,
    producer: FutureProducer,
    assignment: Assignment,
    transform: Box<dyn Transform>,
    codec: Arc<Codec>,
    outputs: HashMap<String, Output>,
    dedupe: DedupeStore,
    held: HeldKeys,
    parked: ParkedStore,
    parked_changelog: String,
    statuses: StatusStore,
    status_changelog: String,
    arrivals: tokio::sync::broadcast::Receiver<String>,
    /// Look for parked records whose reference exists (after a restore, or a missed arrival).
    recheck_parked: bool,
    /// Changelog partitions whose state is loaded.
    restored: HashSet<i32>,
    changelog_partitions: i32,
    dedupe_topic: String,
    held_topic: String,
    metrics: Arc<Metrics>,
    xref: Xref,
}

impl Worker {
    /// Builds the clients (fencing any older producer with the same transactional id) and the
    /// changelog topics; connects, but consumes nothing yet.
    pub async fn new(
        t: &Topology,
        w: &WorkerConfig,
        instance: &str,
        catalog: &Catalog,
        codec: Arc<Codec>,
        metrics: Arc<Metrics>,
        xref: Xref,
    ) -> Result<Self, WorkerError> {
        let setup = |message: String| WorkerError::Setup {
            worker: w.name.clone(),
            message,
        };
        let kafka_err = |source| WorkerError::Kafka {
            worker: w.name.clone(),
            source,
        };
        let settings = Settings::resolve(t, w).map_err(setup)?;
        let transform = transforms::build(w).map_err(|e| setup(e.to_string()))?;
        let mut outputs = HashMap::new();
        for o in &w.outputs {
            let schema = catalog.latest(&o.schema).map_err(|e| setup(e.to_string()))?.clone();
            outputs.insert(
                o.name.clone(),
                Output {
                    topic: o.topic.clone(),
                    route_by: o.route_by.clone(),
                    routes: o.routes.clone(),
                    schema,
                },
            );
        }
        let input_refs: Vec<&str> = w.inputs.iter().map(String::as_str).collect();
        let widest = clients::end_offsets(&t.kafka, &input_refs, KAFKA_TIMEOUT)
            .map_err(kafka_err)?
            .keys()
            .map(|(_, p)| p + 1)
            .max()
            .unwrap_or(1);
        state::ensure_changelogs(
            &t.kafka,
            &w.name,
            &[DEDUPE_STORE, HELD_STORE, PARKED_STORE, STATUS_STORE],
            widest,
        )
        .await
        .map_err(kafka_err)?;
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
                metrics: metrics.clone(),
            },
        )
        .map_err(kafka_err)?;
        let producer = clients::transactional_producer(&t.kafka, &txn_id, KAFKA_TIMEOUT).map_err(kafka_err)?;
        let dedupe = DedupeStore::new(settings.dedupe_ttl.as_millis() as i64, settings.dedupe_max_entries);
        Ok(Self {
            dedupe_topic: state::changelog_topic(&w.name, DEDUPE_STORE),
            held_topic: state::changelog_topic(&w.name, HELD_STORE),
            parked_changelog: state::changelog_topic(&w.name, PARKED_STORE),
            statuses: StatusStore::default(),
            status_changelog: state::changelog_topic(&w.name, STATUS_STORE),
            parked: ParkedStore::default(),
            arrivals: xref.arrivals.subscribe(),
            recheck_parked: false,
            settings,
            kafka: t.kafka.clone(),
            consumer,
            producer,
            assignment,
            transform,
            codec,
            outputs,
            dedupe,
            held: HeldKeys::default(),
            restored: HashSet::new(),
            changelog_partitions: widest,
            metrics,
            xref,
        })
    }

    pub fn assignment(&self) -> Assignment {
        self.assignment.clone()
    }

    /// Consumes until `shutdown` turns true. Returns an error the supervisor acts on.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Result<(), WorkerError> {
        let name = self.settings.name.clone();
        let topics: Vec<&str> = self.settings.inputs.iter().map(String::as_str).collect();
        self.consumer.subscribe(&topics).map_err(|source| WorkerError::Kafka {
            worker: name.clone(),
            source,
        })?;
        // Records whose reference is already in mdm.xref must not be parked for want of it.
        let mut caught_up = self.xref.caught_up.clone();
        tokio::select! {
            r = caught_up.wait_for(|ready| *ready) => { let _ = r; }
            _ = shutdown.changed() => return Ok(()),
        }
        let up = self.metrics.worker_up.with_label_values(&[&name]);
        up.set(1);
        info!(worker = %name, "consuming {}", topics.join(", "));
        let mut failures = 0u32;
        let result = loop {
            let ready = self.ready_references();
            if !ready.is_empty()
                && let Err(e) = self.redrive(&ready).await
            {
                failures += 1;
                self.recheck_parked = true;
                let _ = self.producer.abort_transaction(KAFKA_TIMEOUT);
                self.count_txn("aborted");
                if let BatchError::Fatal(source) = e {
                    break Err(WorkerError::Kafka {
                        worker: name.clone(),
                        source,
                    });
                }
                warn!(worker = %name, attempt = failures, "re-drive aborted, will retry: {e:?}");
                tokio::select! {
                    _ = tokio::time::sleep(self.settings.backoff.delay(failures)) => {}
                    _ = shutdown.changed() => break Ok(()),
                }
                continue;
            }
            let Some(batch) = self.collect(&mut shutdown).await else {
                break Ok(());
            };
            if batch.is_empty() {
                continue;
            }
            let started = Instant::now();
            let span = info_span!("batch", worker = %name, records = batch.len());
            let outcome = {
                let _enter = span.enter();
                debug!("committing batch");
                self.commit_batch(&batch, None).await
            };
            match outcome {
                Ok(()) => {
                    failures = 0;
                    self.metrics
                        .batch_seconds
                        .with_label_values(&[&name])
                        .observe(started.elapsed().as_secs_f64());
                }
                Err(BatchError::Fatal(e)) => {
                    let _ = self.producer.abort_transaction(KAFKA_TIMEOUT);
                    self.count_txn("aborted");
                    break Err(WorkerError::Kafka {
                        worker: name.clone(),
                        source: e,
                    });
                }
                Err(BatchError::Retry { code, message }) => {
                    failures += 1;
                    self.metrics.retries.with_label_values(&[&name, &code]).inc();
                    warn!(worker = %name, attempt = failures, %code, "batch aborted, will retry: {message}");
                    if let Err(e) = self.abort_and_rewind(&batch) {
                        break Err(WorkerError::Kafka {
                            worker: name.clone(),
                            source: e,
                        });
                    }
                    if self.settings.backoff.exhausted(failures) {
                        break Err(WorkerError::RetriesExhausted {
                            worker: name.clone(),
                            attempts: failures,
                            code,
                            message,
                        });
                    }
                    let delay = self.settings.backoff.delay(failures);
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.changed() => break Ok(()),
                    }
                }
            }
        };
        up.set(0);
        self.consumer.unsubscribe();
        info!(worker = %name, "stopped");
        result
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
                            deadline = Some(tokio::time::Instant::now() + self.settings.max_wait);
                        }
                        if batch.len() >= self.settings.max_records {
                            return Some(batch);
                        }
                    }
                    Ok(Err(e)) => {
                        // librdkafka reconnects by itself; this is information, not a failure.
                        warn!(worker = %self.settings.name, error = %e, "consumer error");
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
    async fn commit_batch(
        &mut self,
        batch: &[OwnedMessage],
        redrive: Option<&[ParkedEntry]>,
    ) -> Result<(), BatchError> {
        self.forget_revoked();
        self.restore(batch).await?;
        let now = chrono::Utc::now().timestamp_millis();
        self.dedupe.expire(now);
        self.producer.begin_transaction().map_err(classify)?;
        let producer = self.producer.clone();
        let mut outbox = Outbox::new(&producer);
        let mut pending = Pending::default();
        let processing = self
            .metrics
            .processing_seconds
            .with_label_values(&[&self.settings.name]);
        let mut offsets: BTreeMap<(String, i32), i64> = BTreeMap::new();
        for m in batch {
            if let Some(entries) = redrive {
                let coord = (m.topic().to_string(), m.partition(), m.offset());
                if let Some(e) = entries.iter().find(|e| e.coordinates() == coord) {
                    let cp = e.partition % self.changelog_partitions;
                    send(
                        &mut outbox,
                        &self.parked_changelog,
                        Some(cp),
                        Some(&e.changelog_key()),
                        None,
                        &[],
                    )
                    .await?;
                    pending.parked_changes.push((coord, None));
                    pending.redriven += 1;
                }
                let started = Instant::now();
                self.process(m, now, true, &mut outbox, &mut pending).await?;
                processing.observe(started.elapsed().as_secs_f64());
                continue;
            }
            let started = Instant::now();
            self.process(m, now, false, &mut outbox, &mut pending).await?;
            processing.observe(started.elapsed().as_secs_f64());
            let next = offsets.entry((m.topic().to_string(), m.partition())).or_insert(0);
            *next = (*next).max(m.offset() + 1);
        }
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), offset) in &offsets {
            tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset))
                .map_err(classify)?;
        }
        let group = self.consumer.group_metadata().ok_or_else(|| BatchError::Retry {
            code: "NO_GROUP".into(),
            message: "consumer has no group metadata yet".into(),
        })?;
        outbox.flush().await.map_err(classify)?;
        if redrive.is_none() {
            self.producer
                .send_offsets_to_transaction(&tpl, &group, KAFKA_TIMEOUT)
                .map_err(classify)?;
        }
        self.producer.commit_transaction(KAFKA_TIMEOUT).map_err(classify)?;
        self.count_txn("committed");
        let committed_at = chrono::Utc::now().timestamp_millis();
        let e2e = self
            .metrics
            .end_to_end_seconds
            .with_label_values(&[&self.settings.name]);
        for ts in batch.iter().filter_map(|m| m.timestamp().to_millis()) {
            e2e.observe((committed_at - ts).max(0) as f64 / 1000.0);
        }
        self.apply(pending);
        Ok(())
    }

    async fn process(
        &mut self,
        m: &OwnedMessage,
        now: i64,
        redrive: bool,
        outbox: &mut Outbox<'_>,
        pending: &mut Pending,
    ) -> Result<(), BatchError> {
        let headers: Vec<(String, Vec<u8>)> = m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec).unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default();
        let raw = RawRecord {
            topic: m.topic(),
            partition: m.partition(),
            offset: m.offset(),
            key: m.key(),
            payload: m.payload(),
            headers: &headers,
            timestamp_ms: m.timestamp().to_millis(),
        };
        *pending.consumed.entry(raw.topic.to_string()).or_default() += 1;

        // An operator's release (`syncline dlq release`): the key flows again.
        if raw.header_str(header::CONTROL) == Some("release") {
            if let Some(key) = raw.key
                && self.held_entry(key, pending).is_some()
            {
                info!(worker = %self.settings.name, key = %String::from_utf8_lossy(key), reason = raw.header_str(header::RELEASE_REASON).unwrap_or(""), "key released");
                self.release(key, raw.partition, outbox, pending).await?;
            }
            return Ok(());
        }

        // Sequenced dead letters: later events of a dead-lettered key wait behind it, except the
        // replay of that very dead letter, which goes first and, if it succeeds, releases the key.
        let mut replay_of_held = false;
        if self.settings.sequenced_dead_letters
            && let Some(key) = raw.key
            && let Some(entry) = self.held_entry(key, pending)
        {
            replay_of_held = raw.header_str(header::REPLAY_OF).is_some()
                && raw.header_str(header::ORIGINAL_TOPIC) == Some(entry.topic.as_str())
                && raw.header_str(header::ORIGINAL_PARTITION) == Some(entry.partition.to_string().as_str())
                && raw.header_str(header::ORIGINAL_OFFSET) == Some(entry.offset.to_string().as_str());
            if !replay_of_held {
                pending.held_count += 1;
                return self
                    .park(&raw, &held_reference(key), "held-behind-dead-letter", outbox, pending)
                    .await;
            }
        }

        // Per-key order: while an earlier record of this key is parked, later ones queue behind
        // it (a re-driven record only queues behind what this same re-drive parked again).
        if let Some(key) = raw.key {
            let waiting = pending.parked_keys.get(key).cloned().or_else(|| {
                (!redrive && !replay_of_held)
                    .then(|| self.parked.key_parked_on(key).map(str::to_string))
                    .flatten()
            });
            if let Some(reference) = waiting {
                pending.parked += 1;
                return self
                    .park(&raw, &reference, "behind-parked-record", outbox, pending)
                    .await;
            }
        }

        let delivered = self.map_and_send(&raw, now, outbox, pending).await?;
        if replay_of_held
            && delivered
            && let Some(key) = raw.key
        {
            self.release(key, raw.partition, outbox, pending).await?;
        }
        Ok(())
    }

    /// Transform, dedupe, encode and send one record. `Ok(false)` when it was dead-lettered or
    /// parked instead.
    async fn map_and_send(
        &mut self,
        raw: &RawRecord<'_>,
        now: i64,
        outbox: &mut Outbox<'_>,
        pending: &mut Pending,
    ) -> Result<bool, BatchError> {
        let applied = {
            // Held only while the (synchronous) transform runs, never across an await.
            let table = self.xref.table.read().unwrap_or_else(|poisoned| poisoned.into_inner());
            self.transform.apply(
                raw,
                &Context {
                    now_ms: now,
                    xref: &*table,
                },
            )
        };
        let transformed = match applied {
            Ok(t) => t,
            Err(f) => return self.fail(raw, f, None, now, outbox, pending).await.map(|_| false),
        };
        let fp = dedupe::fingerprint(&transformed.idempotency_key);
        if self.dedupe.contains(fp, now) || pending.fingerprints.contains_key(&fp) {
            pending.duplicates += 1;
            debug!(key = %transformed.idempotency_key, "duplicate skipped");
            return Ok(true);
        }
        // Encode every output before sending any: a record yields all its outputs or a dead letter.
        let mut encoded = Vec::with_capacity(transformed.outputs.len());
        let mut status_updates = Vec::new();
        let cp = raw.partition % self.changelog_partitions;
        for e in &transformed.outputs {
            // Status never goes backwards: a late or lower-ranked status is counted, not published.
            if let CanonicalRecord::OrderStatus(s) = &e.record {
                let candidate = status::Current {
                    rank: status::rank(s.status),
                    status_at: s.status_at,
                };
                let current = pending
                    .statuses
                    .get(&s.order_id)
                    .map(|(_, c)| *c)
                    .or_else(|| self.statuses.current(&s.order_id));
                if !status::is_newer(current, candidate) {
                    pending.stale += 1;
                    debug!(order = %s.order_id, status = ?s.status, "stale status skipped");
                    continue;
                }
                status_updates.push((s.order_id.clone(), candidate));
            }
            let Some(out) = self.outputs.get(e.output) else {
                let f = Failure::business(
                    "NO_OUTPUT",
                    format!("worker has no [[worker.output]] named `{}`", e.output),
                );
                return self
                    .fail(raw, f, Some(&transformed), now, outbox, pending)
                    .await
                    .map(|_| false);
            };
            let topic = match out.topic_for(&e.record) {
                Ok(t) => t.to_string(),
                Err(f) => {
                    return self
                        .fail(raw, f, Some(&transformed), now, outbox, pending)
                        .await
                        .map(|_| false);
                }
            };
            match self.codec.encode_record(&topic, &out.schema, &e.record).await {
                Ok(bytes) => encoded.push((topic, bytes, e.record.meta().clone())),
                Err(err) if err.is_transient() => {
                    return Err(BatchError::Retry {
                        code: "REGISTRY_UNAVAILABLE".into(),
                        message: err.to_string(),
                    });
                }
                Err(err) => {
                    let f = Failure::poison("SCHEMA_VIOLATION", err.to_string());
                    return self
                        .fail(raw, f, Some(&transformed), now, outbox, pending)
                        .await
                        .map(|_| false);
                }
            }
        }
        for (order, current) in status_updates {
            let value = serde_json::to_vec(&current).unwrap_or_default();
            send(
                outbox,
                &self.status_changelog,
                Some(cp),
                Some(order.as_bytes()),
                Some(&value),
                &[],
            )
            .await?;
            pending.statuses.insert(order, (cp, current));
        }
        for (topic, bytes, meta) in &encoded {
            let h = vec![
                (
                    header::OUTPUT_IDEMPOTENCY_KEY.to_string(),
                    meta.idempotency_key.as_bytes().to_vec(),
                ),
                (
                    header::OUTPUT_CORRELATION_ID.to_string(),
                    meta.correlation_id.as_bytes().to_vec(),
                ),
                (header::OUTPUT_EVENT_ID.to_string(), meta.event_id.as_bytes().to_vec()),
            ];
            send(
                outbox,
                topic,
                None,
                Some(transformed.correlation_id.as_bytes()),
                Some(bytes),
                &h,
            )
            .await?;
            *pending.produced.entry(topic.clone()).or_default() += 1;
        }
        let expires_at = now + self.dedupe.ttl_ms();
        let cp = raw.partition % self.changelog_partitions;
        let value = DedupeStore::encode_value(expires_at);
        send(
            outbox,
            &self.dedupe_topic,
            Some(cp),
            Some(&fp.to_be_bytes()),
            Some(&value),
            &[],
        )
        .await?;
        pending.fingerprints.insert(fp, (cp, expires_at));
        Ok(true)
    }

    /// Dead letter, park, or retry, by the failure's class.
    async fn fail(
        &mut self,
        raw: &RawRecord<'_>,
        f: Failure,
        transformed: Option<&Transformed>,
        now: i64,
        outbox: &mut Outbox<'_>,
        pending: &mut Pending,
    ) -> Result<(), BatchError> {
        *pending
            .failed
            .entry((raw.topic.to_string(), f.class.as_str(), f.code))
            .or_default() += 1;
        match f.class {
            ErrorClass::Transient => Err(BatchError::Retry {
                code: f.code.to_string(),
                message: f.message,
            }),
            ErrorClass::MissingMasterData => {
                let reference = f.missing_ref.clone().unwrap_or_default();
                pending.parked += 1;
                self.park(raw, &reference, "missing-master-data", outbox, pending).await
            }
            ErrorClass::Business | ErrorClass::Poison => {
                let correlation = transformed.map(|t| t.correlation_id.as_str());
                let mut h = dlq::dead_letter_headers(raw, &self.settings.name, &f, 1, now, correlation);
                if let Some(t) = transformed {
                    h.push((
                        header::IDEMPOTENCY_KEY.to_string(),
                        t.idempotency_key.as_bytes().to_vec(),
                    ));
                }
                warn!(worker = %self.settings.name, code = f.code, class = %f.class, topic = raw.topic,
                      partition = raw.partition, offset = raw.offset, "dead letter: {}", f.message);
                send(outbox, &self.settings.dead_letter_topic, None, raw.key, raw.payload, &h).await?;
                *pending.dead_letters.entry(f.code).or_default() += 1;
                if self.settings.sequenced_dead_letters
                    && let Some(key) = raw.key
                {
                    let entry = HeldEntry {
                        code: f.code.to_string(),
                        topic: raw.topic.to_string(),
                        partition: raw.partition,
                        offset: raw.offset,
                    };
                    let cp = raw.partition % self.changelog_partitions;
                    let value = serde_json::to_vec(&entry).unwrap_or_default();
                    send(outbox, &self.held_topic, Some(cp), Some(key), Some(&value), &[]).await?;
                    pending.held.insert(key.to_vec(), Some((cp, entry)));
                }
                Ok(())
            }
        }
    }

    /// The dead letter `key` waits behind, counting this batch's changes.
    fn held_entry(&self, key: &[u8], pending: &Pending) -> Option<HeldEntry> {
        match pending.held.get(key) {
            Some(change) => change.as_ref().map(|(_, e)| e.clone()),
            None => self.held.get(key).cloned(),
        }
    }

    /// Lets `key` flow again: a tombstone in the held changelog; its held records are re-driven.
    async fn release(
        &mut self,
        key: &[u8],
        partition: i32,
        outbox: &mut Outbox<'_>,
        pending: &mut Pending,
    ) -> Result<(), BatchError> {
        let cp = partition % self.changelog_partitions;
        send(outbox, &self.held_topic, Some(cp), Some(key), None, &[]).await?;
        pending.held.insert(key.to_vec(), None);
        pending.released += 1;
        Ok(())
    }

    /// Parks `raw` under `reference`: a visible copy on the parked topic, and an entry in the
    /// parked store (changelog in the same transaction) that re-drive works from.
    async fn park(
        &mut self,
        raw: &RawRecord<'_>,
        reference: &str,
        reason: &str,
        outbox: &mut Outbox<'_>,
        pending: &mut Pending,
    ) -> Result<(), BatchError> {
        let h = dlq::parked_headers(raw, &self.settings.name, reason, reference);
        send(outbox, &self.settings.parked_topic, None, raw.key, raw.payload, &h).await?;
        let entry = ParkedEntry {
            reference: reference.to_string(),
            key: raw.key.map(<[u8]>::to_vec),
            topic: raw.topic.to_string(),
            partition: raw.partition,
            offset: raw.offset,
        };
        let cp = raw.partition % self.changelog_partitions;
        let value = serde_json::to_vec(&entry).unwrap_or_default();
        send(
            outbox,
            &self.parked_changelog,
            Some(cp),
            Some(&entry.changelog_key()),
            Some(&value),
            &[],
        )
        .await?;
        if let Some(k) = raw.key {
            pending.parked_keys.insert(k.to_vec(), reference.to_string());
        }
        pending.parked_changes.push((entry.coordinates(), Some((cp, entry))));
        debug!(worker = %self.settings.name, reference, reason, "parked");
        Ok(())
    }

    /// References that parked records wait for and that the cross-reference now has.
    fn ready_references(&mut self) -> Vec<String> {
        let mut arrived = false;
        while let Ok(_) | Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) = self.arrivals.try_recv() {
            arrived = true;
        }
        if !(arrived || self.recheck_parked) || self.parked.is_empty() {
            return Vec::new();
        }
        self.recheck_parked = false;
        let table = self.xref.table.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.parked
            .references()
            .into_iter()
            .filter(|r| match held_key(r) {
                Some(key) => self.held.get(&key).is_none(),
                None => crate::xref::XrefLookup::get(&*table, r).is_some(),
            })
            .collect()
    }

    /// Reads the records parked on `refs` back from their input topics and processes them again,
    /// in original order, in one transaction that also removes their parked entries.
    async fn redrive(&mut self, refs: &[String]) -> Result<(), BatchError> {
        let entries = self.parked.waiting_on(refs);
        if entries.is_empty() {
            return Ok(());
        }
        let coords: Vec<(String, i32, i64)> = entries.iter().map(ParkedEntry::coordinates).collect();
        let records = clients::fetch_records(&self.kafka, &coords, KAFKA_TIMEOUT)
            .await
            .map_err(classify)?;
        if records.len() < entries.len() {
            warn!(worker = %self.settings.name, wanted = entries.len(), found = records.len(),
                  "parked records no longer in their input topic (retention); they cannot be re-driven");
        }
        info!(worker = %self.settings.name, references = ?refs, records = records.len(), "re-driving parked records");
        // Entries whose record is gone are dropped too, or they would wait forever.
        let found: HashSet<(String, i32, i64)> = records
            .iter()
            .map(|m| (m.topic().to_string(), m.partition(), m.offset()))
            .collect();
        for e in entries.iter().filter(|e| !found.contains(&e.coordinates())) {
            self.parked.remove(&e.coordinates());
        }
        self.commit_batch(&records, Some(&entries)).await
    }

    fn apply(&mut self, pending: Pending) {
        for (fp, (cp, expires_at)) in pending.fingerprints {
            self.dedupe.insert(fp, cp, expires_at);
        }
        for (key, change) in pending.held {
            match change {
                Some((cp, entry)) => self.held.insert(key, cp, entry),
                None => {
                    self.held.remove(&key);
                    // Records held behind this key can go now.
                    self.recheck_parked = true;
                }
            }
        }
        for (order, (cp, current)) in pending.statuses {
            self.statuses.set(order, cp, current);
        }
        for (coord, change) in pending.parked_changes {
            match change {
                Some((cp, entry)) => self.parked.insert(cp, entry),
                None => self.parked.remove(&coord),
            }
        }
        let w = self.settings.name.as_str();
        let m = &self.metrics;
        for (topic, n) in pending.consumed {
            m.consumed.with_label_values(&[w, &topic]).inc_by(n);
        }
        for (topic, n) in pending.produced {
            m.produced.with_label_values(&[w, &topic]).inc_by(n);
        }
        for ((topic, class, code), n) in pending.failed {
            m.failed.with_label_values(&[w, &topic, class, code]).inc_by(n);
        }
        for (code, n) in pending.dead_letters {
            m.dead_letters.with_label_values(&[w, code]).inc_by(n);
        }
        m.duplicates.with_label_values(&[w]).inc_by(pending.duplicates);
        m.held.with_label_values(&[w]).inc_by(pending.held_count);
        m.released.with_label_values(&[w]).inc_by(pending.released);
        m.parked.with_label_values(&[w]).inc_by(pending.parked);
        m.redriven.with_label_values(&[w]).inc_by(pending.redriven);
        m.stale.with_label_values(&[w]).inc_by(pending.stale);
    }

    fn count_txn(&self, outcome: &str) {
        self.metrics
            .transactions
            .with_label_values(&[&self.settings.name, outcome])
            .inc();
    }

    /// Aborts the open transaction and seeks each partition back to the batch's first record,
    /// so the next attempt reads the same records again.
    fn abort_and_rewind(&mut self, batch: &[OwnedMessage]) -> Result<(), KafkaError> {
        if let Err(e) = self.producer.abort_transaction(KAFKA_TIMEOUT) {
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

    /// Drops state of changelog partitions no assigned input partition maps to any more.
    fn forget_revoked(&mut self) {
        let revoked = self.assignment.take_revoked();
        if revoked.is_empty() {
            return;
        }
        let still: HashSet<i32> = self
            .assignment
            .assigned()
            .iter()
            .map(|(_, p)| p % self.changelog_partitions)
            .collect();
        for (_, p) in revoked {
            let cp = p % self.changelog_partitions;
            if !still.contains(&cp) && self.restored.remove(&cp) {
                self.dedupe.drop_partition(cp);
                self.held.drop_partition(cp);
                self.parked.drop_partition(cp);
                self.statuses.drop_partition(cp);
                debug!(worker = %self.settings.name, partition = cp, "state dropped");
            }
        }
    }

    /// Loads the changelogs of partitions this batch touches for the first time.
    async fn restore(&mut self, batch: &[OwnedMessage]) -> Result<(), BatchError> {
        let needed: BTreeSet<i32> = batch
            .iter()
            .map(|m| m.partition() % self.changelog_partitions)
            .filter(|cp| !self.restored.contains(cp))
            .collect();
        if needed.is_empty() {
            return Ok(());
        }
        let parts: Vec<i32> = needed.iter().copied().collect();
        let now = chrono::Utc::now().timestamp_millis();
        let dedupe = state::restore(&self.kafka, &self.dedupe_topic, &parts, KAFKA_TIMEOUT)
            .await
            .map_err(classify)?;
        let held = state::restore(&self.kafka, &self.held_topic, &parts, KAFKA_TIMEOUT)
            .await
            .map_err(classify)?;
        for r in &dedupe {
            self.dedupe
                .apply_changelog(&r.key, r.value.as_deref(), r.partition, now);
        }
        for r in &held {
            self.held.apply_changelog(&r.key, r.value.as_deref(), r.partition);
        }
        let parked = state::restore(&self.kafka, &self.parked_changelog, &parts, KAFKA_TIMEOUT)
            .await
            .map_err(classify)?;
        for r in &parked {
            self.parked.apply_changelog(&r.key, r.value.as_deref(), r.partition);
        }
        self.recheck_parked = !self.parked.is_empty();
        let statuses = state::restore(&self.kafka, &self.status_changelog, &parts, KAFKA_TIMEOUT)
            .await
            .map_err(classify)?;
        for r in &statuses {
            self.statuses.apply_changelog(&r.key, r.value.as_deref(), r.partition);
        }
        info!(worker = %self.settings.name, partitions = ?parts, dedupe = dedupe.len(), held = held.len(), "state restored");
        self.restored.extend(needed);
        Ok(())
    }
}

async fn send(
    outbox: &mut Outbox<'_>,
    topic: &str,
    partition: Option<i32>,
    key: Option<&[u8]>,
    payload: Option<&[u8]>,
    headers: &[(String, Vec<u8>)],
) -> Result<(), BatchError> {
    outbox
        .send(Out {
            topic,
            partition,
            key,
            payload,
            headers,
        })
        .await
        .map_err(classify)
}

/// The parking reference of records held behind `key`'s dead letter.
fn held_reference(key: &[u8]) -> String {
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    format!("held:{hex}")
}

/// The key of a `held:` reference.
fn held_key(reference: &str) -> Option<Vec<u8>> {
    let hex = reference.strip_prefix("held:")?;
    (0..hex.len())
        .step_by(2)
        .map(|i| hex.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect()
}
