//! Re-drive: parked records go through the pipeline again, in their own transaction, once the
//! reference they wait for is in the cross-reference (or the dead letter they were held behind
//! was released, or, for a document the API did not find yet, the retry timer is due).
//!
//! Owns: deciding which references are ready and reading their records back from their input
//! coordinates. Must not: decide what a record becomes (the pipeline does, as for a new record).

use std::collections::HashSet;

use rdkafka::message::Message;
use tracing::{info, warn};

use super::{KAFKA_TIMEOUT, Worker};
use crate::kafka::clients;
use crate::runtime::parking::ParkedEntry;
use crate::runtime::pipeline::{BatchError, classify, held_key};

impl Worker {
    /// References that parked records wait for and that the cross-reference now has.
    pub(super) fn ready_references(&mut self) -> Vec<String> {
        let mut arrived = false;
        while let Ok(_) | Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) = self.arrivals.try_recv() {
            arrived = true;
        }
        // Records whose document the API did not find yet are tried again on a timer.
        let now = tokio::time::Instant::now();
        let timer = match &self.p.prep.enricher {
            Some(e) if self.enrich_retry_at.is_none_or(|at| now >= at) => {
                self.enrich_retry_at = Some(now + e.retry_every);
                true
            }
            _ => false,
        };
        if !(arrived || self.p.recheck_parked || timer) || self.p.parked.is_empty() {
            return Vec::new();
        }
        self.p.recheck_parked = false;
        let table = self
            .p
            .prep
            .xref
            .table
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        self.p
            .parked
            .references()
            .into_iter()
            .filter(|r| match held_key(r) {
                Some(key) => self.p.held.get(&key).is_none(),
                None if crate::runtime::enrich::is_pending(r) => timer,
                None => crate::xref::XrefLookup::get(&*table, r).is_some(),
            })
            .collect()
    }

    /// Reads the records parked on `refs` back from their input topics and processes them again,
    /// in original order, in one transaction that also removes their parked entries.
    pub(super) async fn redrive(&mut self, refs: &[String]) -> Result<(), BatchError> {
        let entries = self.p.parked.waiting_on(refs);
        if entries.is_empty() {
            return Ok(());
        }
        let coords: Vec<(String, i32, i64)> = entries.iter().map(ParkedEntry::coordinates).collect();
        let records = clients::fetch_records(&self.kafka, &coords, KAFKA_TIMEOUT)
            .await
            .map_err(classify)?;
        if records.len() < entries.len() {
            warn!(worker = %self.p.settings.name, wanted = entries.len(), found = records.len(),
                  "parked records no longer in their input topic (retention); they cannot be re-driven");
        }
        info!(worker = %self.p.settings.name, references = ?refs, records = records.len(), "re-driving parked records");
        // Entries whose record is gone are dropped too, or they would wait forever.
        let found: HashSet<(String, i32, i64)> = records
            .iter()
            .map(|m| (m.topic().to_string(), m.partition(), m.offset()))
            .collect();
        for e in entries.iter().filter(|e| !found.contains(&e.coordinates())) {
            self.p.parked.remove(&e.coordinates());
        }
        self.commit_batch(&records, Some(&entries), Vec::new(), None)
            .await
            .map(|_| ())
            .map_err(|(e, _)| e)
    }
}
