//! The stateless part of a record, done ahead of its transaction while the previous batch
//! commits: transform, routing to an output topic, Avro encoding, the idempotency fingerprint
//! and the status-ledger key.
//!
//! Owns: [`Preparer`] (what preparing needs, all of it shared across tasks), [`Prepared`] and
//! the one routing-and-encoding path ([`Preparer::route_and_encode`]). Must not: read or change
//! state (dedupe, holds, parking, the ledger): that is decided in the record's transaction.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rdkafka::message::OwnedMessage;

use super::{headers_of, raw_record};
use crate::adapters::RawRecord;
use crate::failure::Failure;
use crate::runtime::dedupe::{self, Fingerprint};
use crate::runtime::enrich::Enricher;
use crate::runtime::status;
use crate::runtime::xref_feed::Xref;
use crate::schema::canonical::CanonicalRecord;
use crate::schema::{Codec, SchemaVersion};
use crate::transforms::{Context, Emitted, Transform, Transformed};
use crate::xref::XrefEntry;

/// Where one named output goes and with which schema.
pub(crate) struct Output {
    pub(crate) topic: Option<String>,
    pub(crate) route_by: Option<String>,
    pub(crate) routes: BTreeMap<String, String>,
    pub(crate) schema: SchemaVersion,
}

impl Output {
    pub(crate) fn topic_for(&self, record: &CanonicalRecord) -> Result<&str, Failure> {
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

/// One record's CPU-heavy work — transform and Avro encoding — done ahead of its transaction,
/// while the previous batch commits. It reads no state and decides nothing: deduplication,
/// holding, parking, status order and sending still happen in the record's own transaction.
pub(crate) struct Prepared {
    /// The record's headers, read once for both steps.
    pub(crate) headers: Vec<(String, Vec<u8>)>,
    pub(crate) applied: Result<Transformed, Failure>,
    /// The idempotency fingerprint of `applied`.
    pub(crate) fingerprint: Option<Fingerprint>,
    /// Per output of `applied`: routed and encoded ahead of time, or why not. Only a registry
    /// that could not be reached is tried again in the transaction.
    pub(crate) encoded: Vec<Option<Encoded>>,
    /// Per output of `applied`: its status-ledger key and position (see `status::gate`).
    pub(crate) gates: Vec<Option<(Fingerprint, crate::schema::lifecycle::Current)>>,
    /// Document links the enrichment learned, written with the record's outputs.
    pub(crate) learned: Vec<XrefEntry>,
}

/// One output routed to its topic and encoded, or why not.
pub(crate) enum Encoded {
    Ready {
        topic: String,
        bytes: Vec<u8>,
    },
    /// The record cannot be written as it is (no such output, no route, schema violation): it
    /// becomes a dead letter.
    Failed(Failure),
    /// The registry could not be reached: the batch is retried.
    Unavailable(String),
}

/// What preparing a record ahead needs, all of it shared: it runs on other tasks while the
/// pipeline's state is in use.
#[derive(Clone)]
pub(crate) struct Preparer {
    pub(crate) transform: Arc<dyn Transform>,
    pub(crate) codec: Arc<Codec>,
    pub(crate) outputs: Arc<HashMap<String, Output>>,
    /// The master-data cross-reference (the worker also waits on its feed).
    pub(crate) xref: Xref,
    /// Completes thin events through a vendor API before the transform (`[worker.enrich]`).
    pub(crate) enricher: Option<Arc<Enricher>>,
}

impl Preparer {
    /// Transforms and encodes `m` without touching state (see [`Prepared`]).
    pub(crate) async fn prepare(&self, m: &OwnedMessage, now: i64) -> Prepared {
        let headers = headers_of(m);
        let raw = raw_record(m, &headers);
        let (applied, learned) = self.apply(&raw, now, &[]).await;
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
            learned,
        }
    }

    /// Enrichment (when the worker has one), then the transform: the one way a record becomes
    /// its outputs, ahead of its transaction or in it. `written`: the cross-reference entries
    /// the batch's earlier records wrote, not in the table yet.
    pub(crate) async fn apply(
        &self,
        raw: &RawRecord<'_>,
        now: i64,
        written: &[XrefEntry],
    ) -> (Result<Transformed, Failure>, Vec<XrefEntry>) {
        if self.transform.reads_records() {
            return (self.apply_to_record(raw, now).await, Vec::new());
        }
        let Some(enricher) = &self.enricher else {
            return (self.apply_transform(raw, now, written), Vec::new());
        };
        let enrichment = enricher.enrich(raw, &self.xref.table, now).await;
        if let Some(f) = enrichment.failure {
            return (Err(f), Vec::new());
        }
        let applied = match &enrichment.payload {
            Some(bytes) => self.apply_transform(
                &RawRecord {
                    payload: Some(bytes),
                    ..*raw
                },
                now,
                written,
            ),
            None => self.apply_transform(raw, now, written),
        };
        (applied, enrichment.learned)
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

    /// A canonical record in (the status gate): decoded with the worker's one output schema,
    /// which a gate reads and writes alike.
    async fn apply_to_record(&self, raw: &RawRecord<'_>, now: i64) -> Result<Transformed, Failure> {
        let (Some(out), Some(bytes)) = (self.outputs.values().next(), raw.payload) else {
            return Err(Failure::poison("NOT_A_CANONICAL_RECORD", "no record to read"));
        };
        let record = match self.codec.decode_record(bytes, &out.schema).await {
            Ok(r) => r,
            Err(e) if e.is_transient() => return Err(Failure::transient("REGISTRY_UNAVAILABLE", e.to_string())),
            Err(e) => return Err(Failure::poison("NOT_A_CANONICAL_RECORD", e.to_string())),
        };
        let table = self.xref.table.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.transform.apply_record(
            record,
            raw,
            &Context {
                now_ms: now,
                xref: &*table,
            },
        )
    }

    pub(crate) fn apply_transform(
        &self,
        raw: &RawRecord<'_>,
        now: i64,
        written: &[XrefEntry],
    ) -> Result<Transformed, Failure> {
        // Held only while the (synchronous) transform runs, never across an await.
        let table = self.xref.table.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        let overlay = crate::xref::Overlay {
            base: &*table,
            writes: written,
        };
        self.transform.apply(
            raw,
            &Context {
                now_ms: now,
                xref: if written.is_empty() { &*table } else { &overlay },
            },
        )
    }
}
