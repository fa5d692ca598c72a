//! State changelogs: compacted topics, written in the worker's transactions, read back on
//! partition assignment.
//!
//! Owns: changelog topic names, their creation, and restoring one partition's records. Must not:
//! interpret keys or values (the stores do).

use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::message::Message;

use crate::config::KafkaConfig;

use super::clients::{self, Offsets, TopicSpec};

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

/// Key prefix of the changelog records that carry one batch's idempotency or ledger state for
/// several input partitions, each entry tagged with its own.
pub const BATCH_KEY: &str = "batch2:";

/// Key prefix of the status ledger's batch records: packed fixed-size entries keyed by
/// fingerprint (ledgers written before read as `BATCH_KEY` JSON maps).
pub const LEDGER_BATCH_KEY: &str = "ledger3:";

/// One changelog record read back.
pub struct Restored {
    pub partition: i32,
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}
