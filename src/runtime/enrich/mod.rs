//! Completes thin vendor events through the vendor's API before they are transformed: an ERP
//! profile's lookups (`adapters::erp::lookups`) or Salesforce's (`adapters::salesforce::lookups`,
//! in `salesforce.rs`) say which call fills which fields; the answer is merged into the event,
//! so transforms read a completed event as they read a fat one.
//!
//! Owns: deciding, per record, which lookups are needed (a fat event or a known document link
//! needs none), the calls, the merge, the document links learned from the answers (or from an
//! event that carries them), and what an API failure means for the record (the failure policy
//! below). Must not: write anything (the pipeline writes learned links in the record's
//! transaction) or retry on its own (the batch is retried, which is the back-pressure).
//!
//! Failure policy: unavailable (timeout, 5xx, 429, open circuit) → the batch is retried, never a
//! dead letter; credentials refused (after one token refresh) → the batch is retried and the
//! worker, once its retries are spent, stops and reports the connection by name; not found →
//! parked and tried again on a timer (`retry_every`), dead-lettered `ENRICHMENT_NOT_FOUND` once
//! the record is older than `not_found_for`; any other refusal → dead letter
//! `ENRICHMENT_REFUSED`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::adapters::RawRecord;
use crate::adapters::erp::lookups::{Lookup, Shape};
use crate::adapters::erp::profile::Field;
use crate::adapters::erp::{self, Catalog, Profile};
use crate::api::{ApiClient, ApiError};
use crate::failure::Failure;
use crate::runtime::pipeline::SetupError;

mod merge;
mod salesforce;
use crate::xref::{self, XrefEntry, XrefLookup, XrefTable};
use merge::{encode_key, entity, is_empty_collection, merge, set, text, text_or_value};

/// The process's API connections by name, built once at start-up so that the workers share
/// each connection's cache, limits and circuit breaker.
pub type Apis = Arc<std::collections::BTreeMap<String, Arc<ApiClient>>>;

/// Connects every `[api.<name>]` of the topology (no request is made yet).
pub fn connect(
    t: &crate::config::Topology,
    metrics: &Arc<crate::telemetry::Metrics>,
) -> Result<Apis, crate::api::ApiSetupError> {
    let mut apis = std::collections::BTreeMap::new();
    for (name, cfg) in &t.api {
        apis.insert(name.clone(), Arc::new(ApiClient::new(name, cfg, metrics.clone())?));
    }
    Ok(Arc::new(apis))
}

/// The enricher of worker `w`, if it has `[worker.enrich]`.
pub fn for_worker(w: &crate::config::WorkerConfig, apis: &Apis) -> Result<Option<Arc<Enricher>>, SetupError> {
    let Some(e) = &w.enrich else {
        return Ok(None);
    };
    let setting = |key: &'static str, message: String| SetupError::Setting { key, message };
    let api = apis
        .get(&e.api)
        .cloned()
        .ok_or_else(|| setting("enrich.api", format!("no connection `[api.{}]`", e.api)))?;
    let vendor = if w.adapter == "salesforce" {
        Vendor::Salesforce
    } else {
        let profile = Profile::by_name(&w.adapter)
            .filter(|p| !p.lookups.is_empty())
            .ok_or_else(|| setting("enrich", format!("the `{}` adapter has no lookups", w.adapter)))?;
        Vendor::Erp(Catalog::with(profile, &w.event_types).map_err(|kind| setting("event_types", kind.to_string()))?)
    };
    let concurrency = api.max_concurrent() * 2;
    Ok(Some(Arc::new(Enricher {
        api,
        vendor,
        not_found_for: e.not_found_for,
        retry_every: e.retry_every,
        concurrency,
    })))
}

/// The prefix of the parking reference of a record whose document the API did not find yet.
const PENDING_PREFIX: &str = "enrich:";

/// Whether a parking reference is a document the API did not find yet (re-driven on the
/// timer, not by an arrival on the cross-reference).
pub fn is_pending(reference: &str) -> bool {
    reference.starts_with(PENDING_PREFIX)
}

/// Whose lookups a worker runs.
pub enum Vendor {
    /// An ERP profile, with the event ids the deployment adds.
    Erp(Catalog),
    /// Salesforce change events (`adapters::salesforce::lookups`).
    Salesforce,
}

/// One worker's enrichment: its vendor's lookups over one API connection.
pub struct Enricher {
    pub api: Arc<ApiClient>,
    pub vendor: Vendor,
    /// A record whose document is still not found this long after it was written is dead-lettered.
    pub not_found_for: Duration,
    /// How often parked records wait for their document before they are tried again.
    pub retry_every: Duration,
    /// Records of a batch enriched at once (the connection's `max_concurrent`, twice over so
    /// that a cache hit never waits behind a call).
    pub concurrency: usize,
}

/// What enriching one record gave.
#[derive(Debug, Default)]
pub struct Enrichment {
    /// The event with the looked-up fields merged in; `None` when nothing was added.
    pub payload: Option<Vec<u8>>,
    /// Document links to add to the cross-reference with the record's outputs.
    pub learned: Vec<XrefEntry>,
    /// Why the record cannot be completed now (its class says what happens to it).
    pub failure: Option<Failure>,
}

impl Enricher {
    /// Completes `raw` where its profile's lookups apply. A record that is not a readable event
    /// of the profile is left as it is: the transform reports why.
    pub async fn enrich(&self, raw: &RawRecord<'_>, table: &std::sync::RwLock<XrefTable>, now: i64) -> Enrichment {
        match &self.vendor {
            Vendor::Erp(catalog) => self.enrich_erp(catalog, raw, table, now).await,
            Vendor::Salesforce => self.enrich_salesforce(raw, now).await,
        }
    }

    async fn enrich_erp(
        &self,
        catalog: &Catalog,
        raw: &RawRecord<'_>,
        table: &std::sync::RwLock<XrefTable>,
        now: i64,
    ) -> Enrichment {
        let p = catalog.profile;
        let Ok(event) = erp::parse(raw, catalog) else {
            return Enrichment::default();
        };
        let Value::Object(mut data) = event.data.to_value() else {
            return Enrichment::default();
        };
        let mut out = Enrichment::default();
        let mut changed = false;
        for lookup in p.lookups.iter().filter(|l| l.kinds.contains(&event.kind)) {
            let Some(key) = text(&data, p.path(lookup.key)) else {
                continue;
            };
            if lookup.only_with.iter().any(|f| text(&data, p.path(*f)).is_none()) {
                continue;
            }
            let reference = xref::document_reference(p.source_system, &event.instance, lookup.document, &key);
            let absent = |data: &Map<String, Value>, f: Field| text_or_value(data, p.path(f)).is_none();
            // Only a missing required field calls; a missing sales order does not once the
            // event names its Salesforce order (the sales order is only a way to it).
            let missing: Vec<Field> = lookup.requires.iter().copied().filter(|f| absent(&data, *f)).collect();
            let only_the_way_to_the_order = missing.iter().all(|f| *f == Field::ErpOrderId);
            let order_known = !absent(&data, Field::SalesforceOrderId);
            let needed = !missing.is_empty() && (!only_the_way_to_the_order || !order_known);
            if !needed {
                // A fat event (or a data event) carries its links: learn them without a call.
                Self::learn(p, &data, lookup, &event.instance, &key, table, &mut out.learned);
                continue;
            }
            if missing.iter().all(|f| lookup.links.contains(f)) && Self::known_links(p, &mut data, &reference, table) {
                changed = true;
                continue;
            }
            let path = lookup
                .path
                .replace("{key}", &encode_key(&key))
                .replace("{instance}", &encode_key(&event.instance));
            let answer = if lookup.fresh {
                self.api.get_fresh(&path).await
            } else {
                self.api.get_json(&path).await
            };
            match answer {
                Ok(answer) => match entity(&answer, lookup.shape) {
                    Some(entity) => {
                        merge(&mut data, p, lookup, entity);
                        changed = true;
                        Self::learn(p, &data, lookup, &event.instance, &key, table, &mut out.learned);
                    }
                    None if lookup.shape == Shape::ODataV4First && is_empty_collection(&answer) => {
                        out.failure = Some(self.not_found(raw, lookup.document, &key, now));
                        return out;
                    }
                    None => {
                        out.failure = Some(self.unexpected(&path));
                        return out;
                    }
                },
                Err(e) => {
                    out.failure = Some(self.failure(e, raw, lookup.document, &key, now));
                    return out;
                }
            }
        }
        if changed {
            match erp::with_data(raw, data) {
                Ok(bytes) => out.payload = Some(bytes),
                Err(f) => out.failure = Some(f),
            }
        }
        out
    }

    /// What a failed call means for the record (the failure policy above).
    fn failure(&self, e: ApiError, raw: &RawRecord<'_>, document: &str, key: &str, now: i64) -> Failure {
        match e {
            ApiError::NotFound { .. } => self.not_found(raw, document, key, now),
            ApiError::Transient { .. } | ApiError::CircuitOpen { .. } => {
                Failure::transient("ENRICHMENT_UNAVAILABLE", e.to_string())
            }
            ApiError::Unauthorized { .. } => Failure::transient("API_UNAUTHORIZED", e.to_string()),
            ApiError::Refused { .. } => Failure::business("ENRICHMENT_REFUSED", e.to_string()),
        }
    }

    fn unexpected(&self, path: &str) -> Failure {
        Failure::business(
            "ENRICHMENT_UNEXPECTED",
            format!(
                "api `{}`: the answer to {path} has no entity where expected",
                self.api.name()
            ),
        )
    }

    /// Not visible through the API yet: parked and tried again, until it is too old.
    fn not_found(&self, raw: &RawRecord<'_>, document: &str, key: &str, now: i64) -> Failure {
        let written = raw.timestamp_ms.unwrap_or(now);
        let api = self.api.name();
        if now.saturating_sub(written) >= self.not_found_for.as_millis() as i64 {
            return Failure::business(
                "ENRICHMENT_NOT_FOUND",
                format!(
                    "api `{api}`: {} {key} still not found {} after the event",
                    document,
                    humantime::format_duration(self.not_found_for)
                ),
            );
        }
        let mut f = Failure::missing(
            format!("{PENDING_PREFIX}{api}:{document}:{key}"),
            format!("api `{api}`: {document} {key} not found yet; tried again later"),
        );
        f.code = "ENRICHMENT_PENDING";
        f
    }

    /// Fills the missing links from the cross-reference; false when it does not have them all.
    fn known_links(
        p: &'static Profile,
        data: &mut Map<String, Value>,
        reference: &str,
        table: &std::sync::RwLock<XrefTable>,
    ) -> bool {
        let table = table.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some(XrefEntry::Document {
            erp_order_id,
            salesforce_order_id,
            ..
        }) = table.get(reference)
        else {
            return false;
        };
        let links = [
            (Field::ErpOrderId, erp_order_id),
            (Field::SalesforceOrderId, salesforce_order_id),
        ];
        let wanted: Vec<_> = links
            .iter()
            .filter(|(f, _)| p.path(*f).is_some_and(|path| text_or_value(data, Some(path)).is_none()))
            .collect();
        if wanted.iter().any(|(_, v)| v.is_none()) {
            return false;
        }
        for (f, v) in wanted {
            if let (Some(path), Some(v)) = (p.path(*f), v) {
                set(data, path, Value::String(v.clone()));
            }
        }
        true
    }

    /// The document's links, once the event has them all, unless the cross-reference knows them.
    fn learn(
        p: &'static Profile,
        data: &Map<String, Value>,
        lookup: &Lookup,
        instance: &str,
        key: &str,
        table: &std::sync::RwLock<XrefTable>,
        learned: &mut Vec<XrefEntry>,
    ) {
        let link = |f: Field| text(data, p.path(f)).filter(|_| lookup.links.contains(&f));
        let (erp_order_id, salesforce_order_id) = (link(Field::ErpOrderId), link(Field::SalesforceOrderId));
        if usize::from(erp_order_id.is_some()) + usize::from(salesforce_order_id.is_some()) < lookup.links.len() {
            return;
        }
        let entry = XrefEntry::Document {
            system: p.source_system.to_string(),
            instance: instance.to_string(),
            document: lookup.document.to_string(),
            id: key.to_string(),
            erp_order_id,
            salesforce_order_id,
        };
        let table = table.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        if table.get(&entry.reference()) != Some(&entry) && !learned.contains(&entry) {
            learned.push(entry);
        }
    }
}
