//! The per-record decision path, shared by `syncline run` (inside Kafka transactions) and
//! `syncline test` (in memory): adapt and map through the transform, deduplicate, hold behind
//! dead letters, park for missing master data, keep statuses from going backwards, route,
//! encode, and say what to write — outputs, dead letters, parked records, changelog records.
//!
//! Owns: the [`Pipeline`] (transform, outputs, state stores), [`Prepared`] (the stateless part of
//! a record — transform and encoding — done ahead while the previous batch commits) and
//! [`Pending`] (what a batch changed, applied only after it committed). Must not: consume,
//! commit or abort (the worker does), or touch the network except the registry through the codec.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message, OwnedMessage};
use tracing::{debug, info, warn};

use crate::adapters::RawRecord;
use crate::config::{self, Topology, WorkerConfig};
use crate::failure::{ErrorClass, Failure};
use crate::schema::canonical::CanonicalRecord;
use crate::schema::{Codec, SchemaVersion};
use crate::telemetry::Metrics;
use crate::transforms::{Context, Emitted, Transform, Transformed};

use super::dedupe::{self, DedupeStore, Fingerprint, FingerprintMap};
use super::dlq::{self, HeldEntry, HeldKeys, header};
use super::parking::{ParkedEntry, ParkedStore};
use super::retry::Backoff;
use super::status::{self, StatusStore};
use super::xref_feed::Xref;
use crate::kafka::txn::{self, Out, Outbox};

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
pub const STORES: [&str; 4] = ["dedupe", "held", "parked", "status"];

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
        let duration = |key: &'static str, text: &str| {
            config::duration(text).map_err(|message| SetupError::Setting { key, message })
        };
        let batch = w.batch.as_ref().unwrap_or(&t.defaults.batch);
        let retry = w.retry.as_ref().unwrap_or(&t.defaults.retry);
        let dedupe = w.dedupe.as_ref().unwrap_or(&t.defaults.dedupe);
        Ok(Self {
            name: w.name.clone(),
            inputs: w.inputs.clone(),
            max_records: batch.max_records,
            max_wait: duration("batch.max_wait", &batch.max_wait)?,
            backoff: Backoff {
                initial: duration("retry.initial_backoff", &retry.initial_backoff)?,
                max: duration("retry.max_backoff", &retry.max_backoff)?,
                max_attempts: retry.max_attempts,
            },
            dedupe_ttl: duration("dedupe.ttl", &dedupe.ttl)?,
            dedupe_max_entries: dedupe.max_entries,
            sequenced_dead_letters: w.sequenced_dead_letters,
            dead_letter_topic: t.defaults.dead_letter_topic.clone(),
            parked_topic: t.defaults.parked_topic.clone(),
        })
    }
}

/// Where one named output goes and with which schema.
pub(crate) struct Output {
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

/// (topic, partition, offset) of a source record.
pub(crate) type Coordinates = (String, i32, i64);

/// One record's CPU-heavy work — transform and Avro encoding — done ahead of its transaction,
/// while the previous batch commits. It reads no state and decides nothing: deduplication,
/// holding, parking, status order and sending still happen in the record's own transaction.
pub(crate) struct Prepared {
    /// The record's headers, read once for both steps.
    headers: Vec<(String, Vec<u8>)>,
    applied: Result<Transformed, Failure>,
    /// The idempotency fingerprint of `applied`.
    fingerprint: Option<Fingerprint>,
    /// Per output of `applied`: routed and encoded ahead of time, or why not. Only a registry
    /// that could not be reached is tried again in the transaction.
    encoded: Vec<Option<Encoded>>,
    /// Per output of `applied`: its status-ledger key and position (see `status::gate`).
    gates: Vec<Option<(Fingerprint, crate::schema::lifecycle::Current)>>,
}

/// One output routed to its topic and encoded, or why not.
pub(crate) enum Encoded {
    Ready { topic: String, bytes: Vec<u8> },
    /// The record cannot be written as it is (no such output, no route, schema violation): it
    /// becomes a dead letter.
    Failed(Failure),
    /// The registry could not be reached: the batch is retried.
    Unavailable(String),
}

/// What a batch changed, applied to the stores and metrics only once it committed.
#[derive(Default)]
pub(crate) struct Pending {
    pub(crate) fingerprints: FingerprintMap<(i32, i64)>,
    /// Held-key changes (None = released), applied in order after the commit.
    pub(crate) held: HashMap<Vec<u8>, Option<(i32, HeldEntry)>>,
    pub(crate) released: u64,
    pub(crate) consumed: HashMap<String, u64>,
    pub(crate) produced: HashMap<String, u64>,
    pub(crate) failed: HashMap<(String, &'static str, &'static str), u64>,
    pub(crate) dead_letters: HashMap<&'static str, u64>,
    pub(crate) duplicates: u64,
    pub(crate) held_count: u64,
    pub(crate) statuses: FingerprintMap<(i32, crate::schema::lifecycle::Current)>,
    /// The ledger snapshot entries the transaction carries.
    pub(crate) snapshot: Option<status::SnapshotChunk>,
    pub(crate) stale: u64,
    pub(crate) parked: u64,
    /// Parked-store changes in order (None = re-driven, removed).
    pub(crate) parked_changes: Vec<(Coordinates, Option<(i32, ParkedEntry)>)>,
    /// Keys parked in this batch, and on which reference.
    pub(crate) parked_keys: HashMap<Vec<u8>, String>,
    pub(crate) redriven: u64,
}

impl Pending {
    /// For a batch of `records`: the maps every record adds to start at their final size.
    pub(crate) fn for_batch(records: usize) -> Self {
        Self {
            fingerprints: FingerprintMap::with_capacity_and_hasher(records, Default::default()),
            statuses: FingerprintMap::with_capacity_and_hasher(records, Default::default()),
            ..Self::default()
        }
    }
}

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

/// What preparing a record ahead needs, all of it shared: it runs on other tasks while the
/// pipeline's state is in use.
#[derive(Clone)]
pub(crate) struct Preparer {
    transform: Arc<dyn Transform>,
    codec: Arc<Codec>,
    outputs: Arc<HashMap<String, Output>>,
    /// The master-data cross-reference (the worker also waits on its feed).
    pub(crate) xref: Xref,
}

impl Preparer {
    /// Transforms and encodes `m` without touching state (see [`Prepared`]).
    pub(crate) async fn prepare(&self, m: &OwnedMessage, now: i64) -> Prepared {
        let headers = headers_of(m);
        let raw = raw_record(m, &headers);
        let applied = self.apply_transform(&raw, now);
        let mut encoded = Vec::new();
        let mut gates = Vec::new();
        if let Ok(t) = &applied {
            for e in &t.outputs {
                gates.push(status::gate(&e.record));
                encoded.push(Some(self.route_and_encode(e).await));
            }
        }
        let fingerprint = applied.as_ref().ok().map(|t| dedupe::fingerprint(&t.idempotency_key));
        Prepared {
            headers,
            applied,
            fingerprint,
            encoded,
            gates,
        }
    }

    /// The one place an output is routed and encoded, ahead of the transaction or in it.
    pub(crate) async fn route_and_encode(&self, e: &Emitted) -> Encoded {
        let Some(out) = self.outputs.get(e.output) else {
            return Encoded::Failed(Failure::business(
                "NO_OUTPUT",
                format!("worker has no [[worker.output]] named `{}`", e.output),
            ));
        };
        let topic = match out.topic_for(&e.record) {
            Ok(t) => t,
            Err(f) => return Encoded::Failed(f),
        };
        match self.codec.encode_record(topic, &out.schema, &e.record).await {
            Ok(bytes) => Encoded::Ready {
                topic: topic.to_string(),
                bytes,
            },
            Err(err) if err.is_transient() => Encoded::Unavailable(err.to_string()),
            Err(err) => Encoded::Failed(Failure::poison("SCHEMA_VIOLATION", err.to_string())),
        }
    }

    pub(crate) fn apply_transform(&self, raw: &RawRecord<'_>, now: i64) -> Result<Transformed, Failure> {
        // Held only while the (synchronous) transform runs, never across an await.
        let table = self.xref.table.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.transform.apply(
            raw,
            &Context {
                now_ms: now,
                xref: &*table,
            },
        )
    }
}

impl Pipeline {
    /// The pipeline of worker `w`; `changelog_partitions` is the widest input's partition count.
    pub fn new(
        t: &Topology,
        w: &WorkerConfig,
        catalog: &crate::schema::Catalog,
        codec: Arc<Codec>,
        metrics: Arc<Metrics>,
        xref: Xref,
        changelog_partitions: i32,
    ) -> Result<Self, SetupError> {
        let settings = Settings::resolve(t, w)?;
        let transform = crate::transforms::build(&w.name, &w.transform, &w.adapter)?;
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
                xref,
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
        let (applied, fingerprint, mut ahead, mut gates) = match prepared {
            // A reference missing when the record was prepared may have arrived since.
            Some(p) if !matches!(&p.applied, Err(f) if f.class == ErrorClass::MissingMasterData) => {
                (p.applied, p.fingerprint, p.encoded, p.gates)
            }
            _ => (self.prep.apply_transform(raw, now), None, Vec::new(), Vec::new()),
        };
        let transformed = match applied {
            Ok(t) => t,
            Err(f) => return self.fail(raw, f, None, now, outbox, pending).await.map(|_| false),
        };
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
                    pending.stale += 1;
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
    /// Dead letter, park, or retry, by the failure's class.
    pub(crate) async fn fail(
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
                send(
                    outbox,
                    &self.settings.dead_letter_topic,
                    None,
                    raw.key,
                    raw.payload,
                    &txn::borrowed(&h),
                )
                .await?;
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
                    let value = super::state::json_value("held", &entry).map_err(BatchError::encoding)?;
                    send(outbox, &self.held_topic, Some(cp), Some(key), Some(&value), &[]).await?;
                    pending.held.insert(key.to_vec(), Some((cp, entry)));
                }
                Ok(())
            }
        }
    }
    /// The dead letter `key` waits behind, counting this batch's changes.
    pub(crate) fn held_entry(&self, key: &[u8], pending: &Pending) -> Option<HeldEntry> {
        match pending.held.get(key) {
            Some(change) => change.as_ref().map(|(_, e)| e.clone()),
            None => self.held.get(key).cloned(),
        }
    }
    /// Lets `key` flow again: a tombstone in the held changelog; its held records are re-driven.
    pub(crate) async fn release(
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
    pub(crate) async fn park(
        &mut self,
        raw: &RawRecord<'_>,
        reference: &str,
        reason: &str,
        outbox: &mut Outbox<'_>,
        pending: &mut Pending,
    ) -> Result<(), BatchError> {
        let h = dlq::parked_headers(raw, &self.settings.name, reason, reference);
        send(
            outbox,
            &self.settings.parked_topic,
            None,
            raw.key,
            raw.payload,
            &txn::borrowed(&h),
        )
        .await?;
        let entry = ParkedEntry {
            reference: reference.to_string(),
            key: raw.key.map(<[u8]>::to_vec),
            topic: raw.topic.to_string(),
            partition: raw.partition,
            offset: raw.offset,
        };
        let cp = raw.partition % self.changelog_partitions;
        let value = super::state::json_value("parked", &entry).map_err(BatchError::encoding)?;
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
