//! What a rebalance changes for a worker instance: the partitions it owns (as the consumer's
//! callbacks report them), the state of the stores restored for newly assigned partitions and
//! dropped for revoked ones, and the consumer-lag series it reports.
//!
//! Owns: [`Assignment`], the consumer context, restore and forget. Must not: consume or commit
//! (the batch cycle does; it calls `restore` before each batch and `forget_revoked` after a
//! revocation).

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex};

use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::message::{Message, OwnedMessage};
use tracing::{debug, info, warn};

use super::{KAFKA_TIMEOUT, Worker};
use crate::runtime::dedupe::DedupeStore;
use crate::runtime::dlq::HeldKeys;
use crate::runtime::parking::ParkedStore;
use crate::runtime::pipeline::{BatchError, classify};
use crate::runtime::state::{self, restore_into};
use crate::runtime::status::StatusStore;
use crate::telemetry::Metrics;

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
    pub(super) assignment: Assignment,
    pub(super) worker: String,
    pub(super) metrics: Arc<Metrics>,
}

impl ClientContext for WorkerContext {
    /// The lag of every assigned partition, from librdkafka's statistics. Only the assigned ones
    /// are this instance's to report (the owner reports the rest; a stale series would be counted
    /// twice by `sum by (worker)`).
    fn stats(&self, stats: rdkafka::Statistics) {
        let assigned = self.assignment.assigned();
        for (topic, t) in &stats.topics {
            for (partition, p) in &t.partitions {
                if !assigned.contains(&(topic.clone(), p.partition)) {
                    continue;
                }
                if let Some(lag) = partition_lag(p) {
                    self.metrics
                        .consumer_lag
                        .with_label_values(&[&self.worker, topic, &partition.to_string()])
                        .set(lag);
                }
            }
        }
    }
}

/// Records of a partition not yet consumed: from the last stable offset (what a read_committed
/// consumer can reach) back to the position. librdkafka's own `consumer_lag` counts from offsets
/// the consumer committed itself, and this one's are committed by the transactional producer, so
/// it is always -1 here. The position is the next offset handed to the worker, else the group's
/// committed offset (known from assignment), else the partition's start.
fn partition_lag(p: &rdkafka::statistics::Partition) -> Option<i64> {
    let end = [p.ls_offset, p.hi_offset].into_iter().find(|o| *o >= 0)?;
    let at = [p.app_offset, p.committed_offset, p.lo_offset]
        .into_iter()
        .find(|o| *o >= 0)?;
    Some((end - at).max(0))
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
                    // The new owner reports this partition's lag from now on.
                    let _ = self
                        .metrics
                        .consumer_lag
                        .remove_label_values(&[&self.worker, &tp.0, &tp.1.to_string()]);
                    s.assigned.remove(&tp);
                    s.revoked.push(tp);
                }
            }
            Rebalance::Error(e) => warn!(error = %e, "rebalance error"),
        }
    }
}

impl Drop for WorkerContext {
    /// A worker that ends without a revoke (a panic, a fatal error) leaves no lag series behind.
    fn drop(&mut self) {
        for (topic, partition) in self.assignment.assigned() {
            let _ = self
                .metrics
                .consumer_lag
                .remove_label_values(&[&self.worker, &topic, &partition.to_string()]);
        }
    }
}

impl Worker {
    /// Drops state of changelog partitions no assigned input partition maps to any more.
    pub(super) fn forget_revoked(&mut self) {
        let revoked = self.assignment.take_revoked();
        if revoked.is_empty() {
            return;
        }
        let still: HashSet<i32> = self
            .assignment
            .assigned()
            .iter()
            .map(|(_, p)| p % self.p.changelog_partitions)
            .collect();
        for (_, p) in revoked {
            let cp = p % self.p.changelog_partitions;
            if !still.contains(&cp) && self.restored.remove(&cp) {
                self.p.drop_partition(cp);
                debug!(worker = %self.p.settings.name, partition = cp, "state dropped");
            }
        }
    }

    /// Loads the changelogs of the partitions this batch touches for the first time, and of every
    /// other assigned partition not loaded yet: one restore after an assignment instead of a
    /// stall in the stream each time a batch first reaches another partition. The four stores
    /// are read concurrently.
    pub(super) async fn restore(&mut self, batch: &[OwnedMessage]) -> Result<(), BatchError> {
        let cps = self.p.changelog_partitions;
        let needed: BTreeSet<i32> = batch
            .iter()
            .map(|m| m.partition())
            .chain(self.assignment.assigned().iter().map(|(_, p)| *p))
            .map(|p| p % cps)
            .filter(|cp| !self.restored.contains(cp))
            .collect();
        if needed.is_empty() {
            return Ok(());
        }
        let parts: Vec<i32> = needed.iter().copied().collect();
        let now = chrono::Utc::now().timestamp_millis();
        let (kafka, worker) = (&self.kafka, self.p.settings.name.as_str());
        let (dedupe, held, parked, statuses) = tokio::try_join!(
            state::read_changelog::<DedupeStore>(kafka, worker, &parts, cps, KAFKA_TIMEOUT),
            state::read_changelog::<HeldKeys>(kafka, worker, &parts, cps, KAFKA_TIMEOUT),
            state::read_changelog::<ParkedStore>(kafka, worker, &parts, cps, KAFKA_TIMEOUT),
            state::read_changelog::<StatusStore>(kafka, worker, &parts, cps, KAFKA_TIMEOUT),
        )
        .map_err(classify)?;
        restore_into(&mut self.p.dedupe, &dedupe, &needed, now);
        restore_into(&mut self.p.held, &held, &needed, now);
        restore_into(&mut self.p.parked, &parked, &needed, now);
        // The ledger's latest changes travel in the transactions' state records (idempotency
        // changelog), its older ones in its own snapshots.
        restore_into(&mut self.p.statuses, &dedupe, &needed, now);
        restore_into(&mut self.p.statuses, &statuses, &needed, now);
        self.p.recheck_parked = !self.p.parked.is_empty();
        info!(worker = %self.p.settings.name, partitions = ?parts, dedupe = dedupe.len(), held = held.len(), "state restored");
        self.restored.extend(needed);
        Ok(())
    }
}
