//! The per-record decision path, shared by `syncline run` (inside Kafka transactions) and
//! `syncline test` (in memory): adapt and map through the transform, deduplicate, hold behind
//! dead letters, park for missing master data, keep statuses from going backwards, route,
//! encode, and say what to write — outputs, dead letters, parked records, changelog records.
//!
//! Owns: the [`Pipeline`] (transform, outputs, state stores), [`Prepared`] (the stateless part of
//! a record — transform and encoding — done ahead while the previous batch commits) and
//! [`Pending`] (what a batch changed, applied only after it committed). Must not: consume,
//! commit or abort (the worker does), or touch the network except the registry through the codec.
//!
//! Roles, one file each: this file decides a record in its transaction (`process`,
//! `map_and_send`) and writes the batch's state (`flush_state`); `prepare` is the stateless
//! work done ahead (transform, routing, encoding); `failures` is where a record goes instead
//! (dead letter, park, hold, release); `delta` is what a batch changed, applied after it
//! committed.
//!
//! Why this file is ~550 lines: `map_and_send` is the one sequence (dedupe, hold, ledger, route,
//! send) whose order is the exactly-once and no-regression argument; it stays in one place to be
//! read in order.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message, OwnedMessage};
use tracing::{debug, info};

use crate::adapters::RawRecord;
use crate::config::{Topology, WorkerConfig};
use crate::failure::ErrorClass;
use crate::schema::Codec;
use crate::telemetry::Metrics;

use super::dedupe::{self, DedupeStore};
use super::dlq::{HeldKeys, header};
use super::parking::ParkedStore;
use super::retry::Backoff;
use super::state::Store;
use super::status::{self, StatusStore};
use super::xref_feed::Xref;
use crate::kafka::txn::{Out, Outbox};

mod delta;
mod failures;
mod prepare;

pub(crate) use delta::Pending;
pub(crate) use prepare::{Encoded, Output, Prepared, Preparer};

/// Adds one to a per-topic counter without allocating the topic name again.
fn count(counters: &mut HashMap<String, u64>, topic: &str) {
    match counters.get_mut(topic) {
        Some(n) => *n += 1,
        None => {
            counters.insert(topic.to_string(), 1);
        }
    }
}

/// A record's headers as adapters read them.
fn headers_of(m: &OwnedMessage) -> Vec<(String, Vec<u8>)> {
    m.headers()
        .map(|h| {
            h.iter()
                .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec).unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default()
}

fn raw_record<'a>(m: &'a OwnedMessage, headers: &'a [(String, Vec<u8>)]) -> RawRecord<'a> {
    RawRecord {
        topic: m.topic(),
        partition: m.partition(),
        offset: m.offset(),
        key: m.key(),
        payload: m.payload(),
        headers,
        timestamp_ms: m.timestamp().to_millis(),
    }
}

/// The state stores every worker keeps, each with its changelog topic.
pub const STORES: [&str; 4] = [DedupeStore::NAME, HeldKeys::NAME, ParkedStore::NAME, StatusStore::NAME];

/// How long a status-ledger entry is kept: a status event later than this after the order's last
/// one is not checked for staleness any more.
const STATUS_RETENTION: Duration = Duration::from_secs(90 * 24 * 3600);

/// Changelog retention per store: dedupe and status are written in batches and expire by time
/// (dedupe a day past its TTL); held and parked are keyed and compacted.
pub fn stores(dedupe_ttl: Duration) -> [(&'static str, Option<Duration>); 4] {
    [
        (STORES[0], Some(dedupe_ttl + Duration::from_secs(24 * 3600))),
        (STORES[1], None),
        (STORES[2], None),
        (STORES[3], Some(STATUS_RETENTION.max(dedupe_ttl))),
    ]
}

/// Why a batch did not commit.
#[derive(Debug)]
pub(crate) enum BatchError {
    /// Abort, rewind, back off, try again.
    Retry { code: String, message: String },
    /// The producer or consumer is unusable: the supervisor builds a new worker.
    Fatal(KafkaError),
}

impl BatchError {
    /// A state entry that cannot be encoded aborts the batch (retried, then the worker stops and
    /// reports unhealthy): nothing is written in its place.
    pub(crate) fn encoding(e: super::state::EncodeError) -> Self {
        BatchError::Retry {
            code: "STATE_ENCODING".into(),
            message: e.to_string(),
        }
    }
}

pub(crate) fn classify(e: KafkaError) -> BatchError {
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
    /// Where learned document links go (the cross-reference topic).
    pub xref_topic: String,
}

/// Why a worker's pipeline cannot be built from a topology that passed validation (the
/// validator checks the same things: these name what slipped through).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{key}: {message}")]
    Setting { key: &'static str, message: String },
    #[error(transparent)]
    Transform(#[from] crate::transforms::BuildError),
    #[error(transparent)]
    Schema(#[from] crate::schema::SchemaError),
}

impl Settings {
    pub fn resolve(t: &Topology, w: &WorkerConfig) -> Result<Self, SetupError> {
        let batch = w.batch.as_ref().unwrap_or(&t.defaults.batch);
        let retry = w.retry.as_ref().unwrap_or(&t.defaults.retry);
        let dedupe = w.dedupe.as_ref().unwrap_or(&t.defaults.dedupe);
        Ok(Self {
            name: w.name.clone(),
            inputs: w.inputs.clone(),
            max_records: batch.max_records,
            max_wait: batch.max_wait,
            backoff: Backoff {
                initial: retry.initial_backoff,
                max: retry.max_backoff,
                max_attempts: retry.max_attempts,
            },
            dedupe_ttl: dedupe.ttl,
            dedupe_max_entries: dedupe.max_entries,
            sequenced_dead_letters: w.sequenced_dead_letters,
            dead_letter_topic: t.defaults.dead_letter_topic.clone(),
            parked_topic: t.defaults.parked_topic.clone(),
            xref_topic: t.defaults.xref_topic.clone(),
        })
    }
}

/// Where a worker's records are completed from: the cross-reference, and the vendor API when
/// the worker enriches.
pub struct Sources {
    pub xref: Xref,
    pub enricher: Option<Arc<super::enrich::Enricher>>,
}

/// (topic, partition, offset) of a source record.
pub(crate) type Coordinates = (String, i32, i64);

/// A worker's transform, outputs and state: everything but the Kafka clients.
pub struct Pipeline {
    pub(crate) settings: Settings,
    /// Transform and encoding, shared with the tasks that prepare records ahead.
    pub(crate) prep: Preparer,
    pub(crate) dedupe: DedupeStore,
    pub(crate) held: HeldKeys,
    pub(crate) parked: ParkedStore,
    pub(crate) statuses: StatusStore,
    /// Look for parked records whose reference exists (after a restore, or a missed arrival).
    pub(crate) recheck_parked: bool,
    pub(crate) changelog_partitions: i32,
    pub(crate) dedupe_topic: String,
    pub(crate) held_topic: String,
    pub(crate) parked_changelog: String,
    pub(crate) status_changelog: String,
    pub(crate) metrics: Arc<Metrics>,
}

impl Pipeline {
    /// The pipeline of worker `w`; `changelog_partitions` is the widest input's partition count.
    pub fn new(
        t: &Topology,
        w: &WorkerConfig,
        catalog: &crate::schema::Catalog,
        codec: Arc<Codec>,
        metrics: Arc<Metrics>,
        sources: Sources,
        changelog_partitions: i32,
    ) -> Result<Self, SetupError> {
        let settings = Settings::resolve(t, w)?;
        let transform =
            crate::transforms::build(&w.name, &w.transform, &w.adapter, &w.event_types, w.governance.as_ref())?;
        let mut outputs = HashMap::new();
        for o in &w.outputs {
            let schema = catalog.latest(&o.schema)?.clone();
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
        let dedupe = DedupeStore::new(settings.dedupe_ttl.as_millis() as i64, settings.dedupe_max_entries);
        Ok(Self {
            dedupe_topic: super::state::changelog_topic(&w.name, STORES[0]),
            held_topic: super::state::changelog_topic(&w.name, STORES[1]),
            parked_changelog: super::state::changelog_topic(&w.name, STORES[2]),
            status_changelog: super::state::changelog_topic(&w.name, STORES[3]),
            settings,
            prep: Preparer {
                transform: Arc::from(transform),
                codec,
                outputs: Arc::new(outputs),
                xref: sources.xref,
                enricher: sources.enricher,
            },
            dedupe,
            held: HeldKeys::default(),
            parked: ParkedStore::default(),
            statuses: StatusStore::default(),
            recheck_parked: false,
            changelog_partitions: changelog_partitions.max(1),
            metrics,
        })
    }

    pub(crate) async fn process(
        &mut self,
        m: &OwnedMessage,
        now: i64,
        redrive: bool,
        mut prepared: Option<Prepared>,
        outbox: &mut Outbox<'_>,
        pending: &mut Pending,
    ) -> Result<(), BatchError> {
        let headers = match prepared.as_mut() {
            Some(p) => std::mem::take(&mut p.headers),
            None => headers_of(m),
        };
        let raw = raw_record(m, &headers);
        count(&mut pending.consumed, raw.topic);

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

        let delivered = self.map_and_send(&raw, now, prepared, outbox, pending).await?;
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
    pub(crate) async fn map_and_send(
        &mut self,
        raw: &RawRecord<'_>,
        now: i64,
        prepared: Option<Prepared>,
        outbox: &mut Outbox<'_>,
        pending: &mut Pending,
    ) -> Result<bool, BatchError> {
        let (applied, fingerprint, mut ahead, mut gates, learned) = match prepared {
            // A reference missing when the record was prepared may have arrived since (a
            // document the API did not find is asked for again on the re-drive timer only).
            Some(p)
                if !matches!(&p.applied, Err(f) if f.class == ErrorClass::MissingMasterData
                    && !f.missing_ref.as_deref().is_some_and(super::enrich::is_pending)) =>
            {
                (p.applied, p.fingerprint, p.encoded, p.gates, p.learned)
            }
            _ => {
                let (applied, learned) = self.prep.apply(raw, now, &pending.written).await;
                (applied, None, Vec::new(), Vec::new(), learned)
            }
        };
        let transformed = match applied {
            Ok(t) => t,
            Err(f) => return self.fail(raw, f, None, now, outbox, pending).await.map(|_| false),
        };
        if !transformed.remember {
            return Ok(true);
        }
        tracing::Span::current().record("correlation_id", transformed.correlation_id.as_str());
        let fp = fingerprint.unwrap_or_else(|| dedupe::fingerprint(&transformed.idempotency_key));
        if self.dedupe.contains(fp, now) || pending.fingerprints.contains_key(&fp) {
            pending.duplicates += 1;
            debug!(key = %transformed.idempotency_key, "duplicate skipped");
            return Ok(true);
        }
        // Encode every output before sending any: a record yields all its outputs or a dead letter.
        let mut encoded = Vec::with_capacity(transformed.outputs.len());
        let mut status_updates = Vec::new();
        let cp = raw.partition % self.changelog_partitions;
        for (i, e) in transformed.outputs.iter().enumerate() {
            // Status never goes backwards: a late or lower-ranked status is counted, not published.
            let gate = match gates.get_mut(i) {
                Some(g) => g.take(),
                None => status::gate(&e.record),
            };
            if let Some((key, candidate)) = gate {
                let current = pending
                    .statuses
                    .get(&key)
                    .map(|(_, c)| *c)
                    .or_else(|| self.statuses.current(&key));
                if !crate::schema::lifecycle::is_newer(current, candidate) {
                    *pending.stale.entry(e.record.meta().source_topic.clone()).or_default() += 1;
                    debug!(correlation_id = %e.record.meta().correlation_id, record = e.record.record(), "stale status skipped");
                    continue;
                }
                status_updates.push((key, candidate));
            }
            let outcome = match ahead.get_mut(i).and_then(Option::take) {
                Some(Encoded::Unavailable(_)) | None => self.prep.route_and_encode(e).await,
                Some(done) => done,
            };
            match outcome {
                Encoded::Ready { topic, bytes } => encoded.push((topic, bytes, i)),
                Encoded::Unavailable(message) => {
                    return Err(BatchError::Retry {
                        code: "REGISTRY_UNAVAILABLE".into(),
                        message,
                    });
                }
                Encoded::Failed(f) => {
                    return self
                        .fail(raw, f, Some(&transformed), now, outbox, pending)
                        .await
                        .map(|_| false);
                }
            }
        }
        // Written to the changelog once per batch (`flush_state`), not per record.
        for (order, current) in status_updates {
            pending.statuses.insert(order, (cp, current));
        }
        for (topic, bytes, i) in encoded {
            let meta = transformed.outputs[i].record.meta();
            let h = [
                (header::OUTPUT_IDEMPOTENCY_KEY, meta.idempotency_key.as_bytes()),
                (header::OUTPUT_CORRELATION_ID, meta.correlation_id.as_bytes()),
                (header::OUTPUT_EVENT_ID, meta.event_id.as_bytes()),
            ];
            send(
                outbox,
                &topic,
                None,
                Some(transformed.correlation_id.as_bytes()),
                Some(&bytes),
                &h,
            )
            .await?;
            count(&mut pending.produced, &topic);
        }
        let writes = transformed.writes;
        let own_writes = !writes.is_empty();
        for entry in learned.into_iter().chain(writes) {
            let key = entry.reference();
            let value = super::state::json_value("xref", &entry).map_err(BatchError::encoding)?;
            send(
                outbox,
                &self.settings.xref_topic,
                None,
                Some(key.as_bytes()),
                Some(&value),
                &[],
            )
            .await?;
            pending.learned.push((key, value));
            if own_writes {
                pending.written.push(entry);
            }
        }
        pending.fingerprints.insert(fp, (cp, now + self.dedupe.ttl_ms()));
        Ok(true)
    }

    /// Writes what a batch added to the idempotency store and the status ledger as one state
    /// record (entries packed, 28 and 29 bytes, each tagged with its partition) in the
    /// idempotency changelog, instead of one record per input or per store; and, once a
    /// `status::SNAPSHOT_INTERVAL`, the ledger's changes since the last snapshot to the ledger's
    /// own changelog. Called once per batch, inside its transaction.
    pub(crate) async fn flush_state(
        &self,
        batch_id: &str,
        outbox: &mut Outbox<'_>,
        pending: &mut Pending,
    ) -> Result<(), BatchError> {
        // Written to the lowest of the batch's partitions; entries carry their own.
        let lowest = pending
            .fingerprints
            .values()
            .map(|(cp, _)| *cp)
            .chain(pending.statuses.values().map(|(cp, _)| *cp))
            .min();
        if let Some(cp) = lowest {
            let key = format!("{}{batch_id}", super::state::STATE_BATCH_KEY);
            let value = super::state::frame_batch(
                &DedupeStore::encode_batch(pending.fingerprints.iter()),
                &StatusStore::encode_batch(pending.statuses.iter()),
            );
            send(
                outbox,
                &self.dedupe_topic,
                Some(cp),
                Some(key.as_bytes()),
                Some(&value),
                &[],
            )
            .await?;
        }
        if let Some((value, chunk)) = self.statuses.snapshot_due(&pending.statuses) {
            let key = format!("{}{batch_id}", super::state::LEDGER_BATCH_KEY);
            // Snapshots hold entries of every partition: any partition of the changelog will do.
            send(
                outbox,
                &self.status_changelog,
                Some(0),
                Some(key.as_bytes()),
                Some(&value),
                &[],
            )
            .await?;
            pending.snapshot = Some(chunk);
        }
        Ok(())
    }
    /// Forgets every store's entries of changelog partition `cp` (revoked).
    pub(crate) fn drop_partition(&mut self, cp: i32) {
        self.dedupe.drop_partition(cp);
        self.held.drop_partition(cp);
        self.parked.drop_partition(cp);
        self.statuses.drop_partition(cp);
    }

    pub(crate) fn apply(&mut self, pending: Pending) {
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
        if let Some(chunk) = &pending.snapshot {
            self.statuses.snapshotted(chunk);
        }
        for (coord, change) in pending.parked_changes {
            match change {
                Some((cp, entry)) => self.parked.insert(cp, entry),
                None => self.parked.remove(&coord),
            }
        }
        if !pending.learned.is_empty() {
            let mut table = self
                .prep
                .xref
                .table
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            for (key, value) in &pending.learned {
                if let Err(e) = table.apply(key, Some(value)) {
                    tracing::warn!(worker = %self.settings.name, error = %e, "cross-reference write not applied");
                }
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
        for (source, n) in pending.stale {
            m.stale.with_label_values(&[w, &source]).inc_by(n);
        }
    }
}

pub(crate) async fn send(
    outbox: &mut Outbox<'_>,
    topic: &str,
    partition: Option<i32>,
    key: Option<&[u8]>,
    payload: Option<&[u8]>,
    headers: &[(&str, &[u8])],
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
pub(crate) fn held_reference(key: &[u8]) -> String {
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    format!("held:{hex}")
}

/// The key of a `held:` reference.
pub(crate) fn held_key(reference: &str) -> Option<Vec<u8>> {
    let hex = reference.strip_prefix("held:")?;
    (0..hex.len())
        .step_by(2)
        .map(|i| hex.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect()
}
