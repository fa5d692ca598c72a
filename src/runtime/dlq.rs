//! Dead letters and the keys held behind them.
//!
//! Owns: the dead-letter record format (docs/architecture.md, "Operations") (original key, value and headers
//! unchanged plus `syncline.*` headers), the header names, and the held-keys store (sequenced
//! dead letters: later events of a dead-lettered key wait in order). Must not: send records
//! (the worker does, inside its transaction).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::adapters::RawRecord;
use crate::failure::Failure;

pub mod header {
    pub const ORIGINAL_TOPIC: &str = "syncline.original.topic";
    pub const ORIGINAL_PARTITION: &str = "syncline.original.partition";
    pub const ORIGINAL_OFFSET: &str = "syncline.original.offset";
    pub const ORIGINAL_TIMESTAMP: &str = "syncline.original.timestamp";
    pub const WORKER: &str = "syncline.worker";
    pub const ERROR_CLASS: &str = "syncline.error.class";
    pub const ERROR_CODE: &str = "syncline.error.code";
    pub const ERROR_MESSAGE: &str = "syncline.error.message";
    pub const ATTEMPTS: &str = "syncline.attempts";
    pub const FIRST_FAILURE: &str = "syncline.first-failure";
    pub const CORRELATION_ID: &str = "syncline.correlation-id";
    pub const IDEMPOTENCY_KEY: &str = "syncline.idempotency-key";
    pub const PARK_REASON: &str = "syncline.park.reason";
    pub const PARK_REF: &str = "syncline.park.ref";
    /// On a replayed record: the dead letter it replays (`<dlq topic>:<partition>:<offset>`).
    pub const REPLAY_OF: &str = "syncline.replay.of";
    pub const REPLAY_COUNT: &str = "syncline.replay.count";
    /// On an operator's control record: `release`.
    pub const CONTROL: &str = "syncline.control";
    pub const RELEASE_REASON: &str = "syncline.release.reason";
    /// On canonical outputs.
    pub const OUTPUT_IDEMPOTENCY_KEY: &str = "idempotency-key";
    pub const OUTPUT_CORRELATION_ID: &str = "correlation-id";
    pub const OUTPUT_EVENT_ID: &str = "event-id";
}

pub type Headers = Vec<(String, Vec<u8>)>;

/// Headers that every syncline-written copy of a source record carries.
fn lineage(raw: &RawRecord<'_>, worker: &str) -> Headers {
    // Earlier syncline headers (a replayed record failing again) are replaced, not stacked.
    let mut h: Headers = raw
        .headers
        .iter()
        .filter(|(k, _)| !k.starts_with("syncline.") || k.starts_with("syncline.replay"))
        .cloned()
        .collect();
    let mut add = |k: &str, v: String| h.push((k.to_string(), v.into_bytes()));
    add(header::ORIGINAL_TOPIC, raw.topic.to_string());
    add(header::ORIGINAL_PARTITION, raw.partition.to_string());
    add(header::ORIGINAL_OFFSET, raw.offset.to_string());
    if let Some(ts) = raw.timestamp_ms {
        add(header::ORIGINAL_TIMESTAMP, ts.to_string());
    }
    add(header::WORKER, worker.to_string());
    h
}

/// The headers of a dead letter for `raw`.
pub fn dead_letter_headers(
    raw: &RawRecord<'_>,
    worker: &str,
    failure: &Failure,
    attempts: u32,
    now_ms: i64,
    correlation_id: Option<&str>,
) -> Headers {
    let mut h = lineage(raw, worker);
    let mut add = |k: &str, v: String| h.push((k.to_string(), v.into_bytes()));
    add(header::ERROR_CLASS, failure.class.as_str().to_string());
    add(header::ERROR_CODE, failure.code.to_string());
    add(header::ERROR_MESSAGE, failure.message.chars().take(2000).collect());
    add(header::ATTEMPTS, attempts.to_string());
    let first = raw
        .header_str(header::FIRST_FAILURE)
        .map(str::to_string)
        .unwrap_or_else(|| rfc3339(now_ms));
    add(header::FIRST_FAILURE, first);
    let correlation = correlation_id
        .map(str::to_string)
        .or_else(|| raw.key.and_then(|k| std::str::from_utf8(k).ok()).map(str::to_string))
        .unwrap_or_default();
    add(header::CORRELATION_ID, correlation);
    h
}

/// The headers of a parked record (held behind a dead letter, or waiting for master data).
pub fn parked_headers(raw: &RawRecord<'_>, worker: &str, reason: &str, reference: &str) -> Headers {
    let mut h = lineage(raw, worker);
    h.push((header::PARK_REASON.to_string(), reason.as_bytes().to_vec()));
    h.push((header::PARK_REF.to_string(), reference.as_bytes().to_vec()));
    h
}

pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// Why a key is held: the dead letter it waits behind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldEntry {
    pub code: String,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// Keys with an unresolved dead letter, by input partition.
#[derive(Default)]
pub struct HeldKeys {
    keys: HashMap<Vec<u8>, (i32, HeldEntry)>,
}

impl HeldKeys {
    pub fn get(&self, key: &[u8]) -> Option<&HeldEntry> {
        self.keys.get(key).map(|(_, e)| e)
    }

    pub fn insert(&mut self, key: Vec<u8>, partition: i32, entry: HeldEntry) {
        self.keys.insert(key, (partition, entry));
    }

    pub fn remove(&mut self, key: &[u8]) {
        self.keys.remove(key);
    }

    pub fn drop_partition(&mut self, partition: i32) {
        self.keys.retain(|_, (p, _)| *p != partition);
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Applies a changelog record: JSON entry, or a tombstone when the key was released.
    pub fn apply_changelog(&mut self, key: &[u8], value: Option<&[u8]>, partition: i32) {
        match value.and_then(|v| serde_json::from_slice::<HeldEntry>(v).ok()) {
            Some(entry) => self.insert(key.to_vec(), partition, entry),
            None => self.remove(key),
        }
    }
}
impl super::state::Store for HeldKeys {
    const NAME: &'static str = "held";
    const MIXES_PARTITIONS: bool = false;
    fn restore(&mut self, r: &super::state::Restored, _wanted: &std::collections::BTreeSet<i32>, _now_ms: i64) {
        self.apply_changelog(&r.key, r.value.as_deref(), r.partition);
    }
}
