//! State changelogs: compacted topics, written in the worker's transactions, read back on
//! partition assignment.
//!
//! Owns: changelog topic names, their creation, restoring one partition's records, and the framing
//! of the record that carries two stores' entries. Must not: interpret the entries (the stores
//! do).

use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::message::Message;

use crate::config::KafkaConfig;

use crate::kafka::clients::{self, Offsets, TopicSpec};

/// A store entry that could not be encoded. Never written as an empty value instead: an empty
/// value in a compacted changelog reads back as a deletion.
#[derive(Debug, thiserror::Error)]
#[error("cannot encode a {store} entry: {source}")]
pub struct EncodeError {
    pub store: &'static str,
    #[source]
    pub source: serde_json::Error,
}

/// The JSON value of a `store` entry (parked, held, tracker timeline, dead-letter decision).
pub fn json_value<T: serde::Serialize>(store: &'static str, entry: &T) -> Result<Vec<u8>, EncodeError> {
    serde_json::to_vec(entry).map_err(|source| EncodeError { store, source })
}

/// `syncline.state.<worker>.<store>`.
pub fn changelog_topic(worker: &str, store: &str) -> String {
    format!("syncline.state.{worker}.{store}")
}

/// Creates the changelog topics of a worker (compacted, as many partitions as its widest input).
/// `stores` are (name, retention): keyed stores are compacted (None); batch-written stores are
/// time-retained logs (Some(retention)), their records expire with the entries they hold.
pub async fn ensure_changelogs(
    cfg: &KafkaConfig,
    worker: &str,
    stores: &[(&str, Option<std::time::Duration>)],
    partitions: i32,
) -> Result<(), KafkaError> {
    let specs: Vec<TopicSpec> = stores
        .iter()
        .map(|(s, retention)| TopicSpec {
            name: changelog_topic(worker, s),
            partitions,
            compacted: retention.is_none(),
            retention_ms: retention.map(|r| r.as_millis() as i64),
        })
        .collect();
    clients::ensure_topics(cfg, &specs).await.map(|_| ())
}

/// Every committed record of some changelog partitions, oldest first per partition:
/// (partition, key, value or tombstone).
pub async fn restore(
    cfg: &KafkaConfig,
    topic: &str,
    partitions: &[i32],
    timeout: Duration,
) -> Result<Vec<Restored>, KafkaError> {
    let from: Offsets = partitions.iter().map(|p| ((topic.to_string(), *p), 0)).collect();
    let messages = clients::read_committed_since(cfg, &from, timeout).await?;
    Ok(messages
        .into_iter()
        .filter_map(|m| {
            m.key().map(|k| Restored {
                partition: m.partition(),
                key: k.to_vec(),
                value: m.payload().map(<[u8]>::to_vec),
            })
        })
        .collect())
}

/// Key prefix of the status ledger's snapshot records: packed fixed-size entries keyed by
/// fingerprint. (No release ever wrote another format: no reader of one is kept.)
pub const LEDGER_BATCH_KEY: &str = "ledger3:";

/// Key prefix of the one state record a transaction writes (in the idempotency changelog): the
/// batch's idempotency entries and its status-ledger entries, framed by [`frame_batch`]. One
/// record instead of one per store: every partition a transaction touches costs the commit a
/// marker and the broker a write.
pub const STATE_BATCH_KEY: &str = "state3:";

/// A `STATE_BATCH_KEY` value: the idempotency part's length (4 bytes, big-endian), that part,
/// then the ledger part.
pub fn frame_batch(dedupe: &[u8], ledger: &[u8]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(4 + dedupe.len() + ledger.len());
    buf.extend_from_slice(&(dedupe.len() as u32).to_be_bytes());
    buf.extend_from_slice(dedupe);
    buf.extend_from_slice(ledger);
    buf
}

/// The (idempotency, ledger) parts of a `STATE_BATCH_KEY` value; empty parts if it is malformed.
pub fn split_batch(value: &[u8]) -> (&[u8], &[u8]) {
    let Some((len, rest)) = value.split_first_chunk::<4>() else {
        return (&[], &[]);
    };
    let len = u32::from_be_bytes(*len) as usize;
    if len > rest.len() {
        return (&[], &[]);
    }
    rest.split_at(len)
}

/// A worker's state store with a changelog topic: what restoring it on assignment needs, so
/// that restore is one loop over the stores (`read_changelog`, `restore_into`).
pub trait Store {
    /// The store's name: its changelog is `syncline.state.<worker>.<NAME>`.
    const NAME: &'static str;
    /// Whether its changelog records mix input partitions (batch records), so a restore reads
    /// every changelog partition and keeps the wanted entries; keyed stores read only the
    /// changelog partitions of the assigned input partitions.
    const MIXES_PARTITIONS: bool;
    /// Applies one restored record for the input partitions in `wanted`.
    fn restore(&mut self, record: &Restored, wanted: &std::collections::BTreeSet<i32>, now_ms: i64);
}

/// Applies every restored record of a changelog to `store`.
pub fn restore_into<S: Store>(
    store: &mut S,
    records: &[Restored],
    wanted: &std::collections::BTreeSet<i32>,
    now_ms: i64,
) {
    for r in records {
        store.restore(r, wanted, now_ms);
    }
}

/// Reads what a restore of `S` for the changelog partitions `wanted` needs (every partition
/// when the store mixes them).
pub async fn read_changelog<S: Store>(
    cfg: &KafkaConfig,
    worker: &str,
    wanted: &[i32],
    changelog_partitions: i32,
    timeout: Duration,
) -> Result<Vec<Restored>, KafkaError> {
    let all: Vec<i32> = (0..changelog_partitions).collect();
    let partitions = if S::MIXES_PARTITIONS { &all[..] } else { wanted };
    restore(cfg, &changelog_topic(worker, S::NAME), partitions, timeout).await
}

/// One changelog record read back.
pub struct Restored {
    pub partition: i32,
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_framed_batch_splits_back_and_a_malformed_one_yields_nothing() {
        let value = frame_batch(&[1; 28], &[2; 29]);
        assert_eq!(split_batch(&value), (&[1u8; 28][..], &[2u8; 29][..]));
        assert_eq!(
            split_batch(&[0, 0]),
            (&[][..], &[][..]),
            "shorter than its length prefix"
        );
        assert_eq!(
            split_batch(&[0, 0, 0, 9, 1]),
            (&[][..], &[][..]),
            "a part longer than the value"
        );
        assert_eq!(split_batch(&frame_batch(&[], &[3; 29])).1.len(), 29);
    }

    #[test]
    fn an_entry_that_cannot_be_encoded_is_an_error_not_an_empty_value() {
        // JSON object keys must be strings: a map keyed by tuples cannot be written.
        let entry: std::collections::BTreeMap<(i32, i32), i32> = [((1, 2), 3)].into();
        let e = json_value("parked", &entry).unwrap_err();
        assert!(e.to_string().starts_with("cannot encode a parked entry"), "{e}");
        assert_eq!(json_value("held", &[1, 2]).unwrap(), b"[1,2]");
    }
}
