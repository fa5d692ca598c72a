//! Keeps the process's cross-reference table current from the compacted `mdm.xref` topic, read
//! in full by every instance (a global table), and announces each reference that arrives so
//! parked records can be re-driven.
//!
//! Owns: the consumer of `mdm.xref` and the "caught up" signal workers wait for before their
//! first batch (otherwise a record whose reference already exists would be parked). Must not:
//! re-drive anything itself (workers do, in their transactions).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use rdkafka::consumer::{Consumer, DefaultConsumerContext, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{broadcast, watch};
use tracing::{info, warn};

use crate::config::KafkaConfig;
use crate::xref::XrefTable;

use crate::kafka::clients;

/// The shared table plus its notifications.
#[derive(Clone)]
pub struct Xref {
    pub table: Arc<RwLock<XrefTable>>,
    pub arrivals: broadcast::Sender<String>,
    pub caught_up: watch::Receiver<bool>,
}

impl Xref {
    /// A table that is never fed (for `syncline test` and workers without master data).
    pub fn fixed(table: XrefTable) -> Self {
        let (_, caught_up) = watch::channel(true);
        let (arrivals, _) = broadcast::channel(16);
        Self {
            table: Arc::new(RwLock::new(table)),
            arrivals,
            caught_up,
        }
    }
}

/// Starts the feed task; the returned handle's `caught_up` turns true once the topic's current
/// end has been read. `accounts_in_state` follows the governed accounts the table holds.
pub async fn start(
    cfg: &KafkaConfig,
    topic: &str,
    accounts_in_state: prometheus::IntGaugeVec,
    mut shutdown: watch::Receiver<bool>,
) -> Result<Xref, KafkaError> {
    let table = Arc::new(RwLock::new(XrefTable::default()));
    let (arrivals, _) = broadcast::channel(4096);
    let (ready_tx, caught_up) = watch::channel(false);
    let ends = clients::end_offsets(cfg, &[topic], Duration::from_secs(30)).await?;
    let consumer: StreamConsumer<DefaultConsumerContext> = clients::base(cfg)
        .set("group.id", "syncline-xref-feed")
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .create_with_context(DefaultConsumerContext)?;
    let mut tpl = TopicPartitionList::new();
    for (t, p) in ends.keys() {
        tpl.add_partition_offset(t, *p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let xref = Xref {
        table: table.clone(),
        arrivals: arrivals.clone(),
        caught_up,
    };
    let topic = topic.to_string();
    tokio::spawn(async move {
        let mut remaining: std::collections::BTreeMap<i32, i64> = ends
            .iter()
            .filter(|(_, end)| **end > 0)
            .map(|((_, p), end)| (*p, *end))
            .collect();
        if remaining.is_empty() {
            let _ = ready_tx.send(true);
        }
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                m = tokio::time::timeout(Duration::from_millis(500), consumer.recv()) => match m {
                    // Idle: transaction markers may sit past the last record, so ask the position.
                    Err(_) => {
                        if !remaining.is_empty()
                            && let Ok(pos) = consumer.position()
                        {
                            remaining.retain(|p, end| {
                                pos.find_partition(&topic, *p).and_then(|e| e.offset().to_raw()).is_none_or(|o| o < *end)
                            });
                            if remaining.is_empty() {
                                let _ = ready_tx.send(true);
                            }
                        }
                    }
                    Ok(Ok(m)) => {
                        let key = m.key().and_then(|k| std::str::from_utf8(k).ok()).unwrap_or_default().to_string();
                        let applied = table.write().map(|mut t| {
                            let applied = t.apply(&key, m.payload());
                            if key.starts_with("governance:") {
                                for (state, n) in t.accounts_in_state() {
                                    accounts_in_state.with_label_values(&[state.name()]).set(*n);
                                }
                            }
                            applied
                        });
                        match applied {
                            Ok(Ok(reference)) => {
                                let _ = arrivals.send(reference);
                            }
                            Ok(Err(e)) => warn!(topic = %topic, "skipped: {e}"),
                            Err(_) => warn!("xref table lock poisoned"),
                        }
                        if let Some(end) = remaining.get(&m.partition())
                            && m.offset() + 1 >= *end
                        {
                            remaining.remove(&m.partition());
                            if remaining.is_empty() {
                                let n = table.read().map(|t| t.len()).unwrap_or(0);
                                info!(topic = %topic, entries = n, "cross-reference loaded");
                                let _ = ready_tx.send(true);
                            }
                        }
                    }
                    Ok(Err(e)) => {
                        warn!(topic = %topic, error = %e, "xref feed error");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                },
            }
        }
    });
    Ok(xref)
}
