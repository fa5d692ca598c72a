//! Where a record goes instead of its outputs: a dead letter (business or poison), the parked
//! topic (missing master data, or held behind its key's dead letter), or a retried batch
//! (transient). Also the release that lets a held key flow again.
//!
//! Owns: those writes, inside the record's transaction, and their changelog entries. Must not:
//! decide the failure's class (the adapters and transforms do).

use tracing::{debug, warn};

use super::{Pending, Pipeline, send};
use crate::adapters::RawRecord;
use crate::failure::{ErrorClass, Failure};
use crate::kafka::txn::{self, Outbox};
use crate::runtime::dlq::{self, HeldEntry, header};
use crate::runtime::parking::ParkedEntry;
use crate::runtime::pipeline::BatchError;
use crate::transforms::Transformed;

impl Pipeline {
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
                    let value = crate::runtime::state::json_value("held", &entry).map_err(BatchError::encoding)?;
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
        let value = crate::runtime::state::json_value("parked", &entry).map_err(BatchError::encoding)?;
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
}
