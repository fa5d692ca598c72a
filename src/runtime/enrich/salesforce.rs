//! The Salesforce side of enrichment: a change event that carries only what changed is completed
//! with the record (`sobjects/<entity>/{id}`) and its related rows (a SOQL query, every page),
//! as `adapters::salesforce::lookups` says.
//!
//! Owns: when a change event needs the calls, reading the REST answers (the record, `records`
//! pages with `nextRecordsUrl`), and filling what the event lacks. Must not: overwrite a field
//! the event carries (its changed values are newer than any read) or learn links (a Salesforce
//! record is its own reference).

use serde_json::{Map, Value};

use super::merge::encode_key;
use super::{Enricher, Enrichment};
use crate::adapters::salesforce::lookups::{self, Lookup, Related};
use crate::adapters::{RawRecord, json, salesforce};
use crate::failure::Failure;

/// Pages of one related query read at most (2000 rows a page): an order with more items than
/// that is refused rather than read without end.
const MAX_PAGES: usize = 50;

impl Enricher {
    pub(super) async fn enrich_salesforce(&self, raw: &RawRecord<'_>, now: i64) -> Enrichment {
        let mut out = Enrichment::default();
        // A record that is not a readable event is left as it is: the transform reports why.
        let Ok(event) = salesforce::parse(raw) else {
            return out;
        };
        let (Some(change), Some(lookup)) = (&event.change, lookups::for_entity(&event.entity)) else {
            return out;
        };
        let (field, value) = lookup.when;
        let Some(id) = change.record_ids.first() else {
            return out;
        };
        if event.text(field).ok().flatten().as_deref() != Some(value) {
            return out;
        }
        let mut added = Map::new();
        if lookup.requires.iter().any(|f| event.field(f).is_none()) {
            match self.record(lookup, id, raw, now).await {
                Ok(record) => added = record,
                Err(f) => {
                    out.failure = Some(f);
                    return out;
                }
            }
        }
        if let Some(related) = &lookup.related
            && event.field(related.into).is_none()
        {
            match self.related(related, lookup, id, raw, now).await {
                Ok(rows) => {
                    added.insert(related.into.to_string(), Value::Array(rows));
                }
                Err(f) => {
                    out.failure = Some(f);
                    return out;
                }
            }
        }
        if !added.is_empty() {
            match salesforce::with_fields(raw, added) {
                Ok(bytes) => out.payload = Some(bytes),
                Err(f) => out.failure = Some(f),
            }
        }
        out
    }

    /// The record's fields (without the REST `attributes`).
    async fn record(
        &self,
        lookup: &Lookup,
        id: &str,
        raw: &RawRecord<'_>,
        now: i64,
    ) -> Result<Map<String, Value>, Failure> {
        let path = lookup.record.replace("{id}", &encode_key(id));
        let answer = self
            .api
            .get_json(&path)
            .await
            .map_err(|e| self.failure(e, raw, lookup.entity, id, now))?;
        let Some(fields) = answer.as_object() else {
            return Err(self.unexpected(&path));
        };
        Ok(fields
            .iter()
            .filter(|(k, v)| k.as_str() != "attributes" && !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    /// The related rows as items, every page of the query.
    async fn related(
        &self,
        related: &Related,
        lookup: &Lookup,
        id: &str,
        raw: &RawRecord<'_>,
        now: i64,
    ) -> Result<Vec<Value>, Failure> {
        let mut path = related.query.replace("{id}", &encode_key(id));
        let mut items = Vec::new();
        for _ in 0..MAX_PAGES {
            let answer = self
                .api
                .get_json(&path)
                .await
                .map_err(|e| self.failure(e, raw, lookup.entity, id, now))?;
            let Some(rows) = answer.get("records").and_then(Value::as_array) else {
                return Err(self.unexpected(&path));
            };
            items.extend(rows.iter().map(|row| item(row, related)));
            let done = answer.get("done").and_then(Value::as_bool).unwrap_or(true);
            // `nextRecordsUrl` is absolute (`/services/data/v62.0/query/01g…-2000`); the
            // connection's base is the versioned REST root.
            match answer.get("nextRecordsUrl").and_then(Value::as_str) {
                Some(next) if !done => match next.find("query/") {
                    Some(at) => path = next[at..].to_string(),
                    None => return Err(self.unexpected(&path)),
                },
                _ => return Ok(items),
            }
        }
        Err(Failure::business(
            "ENRICHMENT_REFUSED",
            format!(
                "api `{}`: {} {id} has more than {MAX_PAGES} pages of {}",
                self.api.name(),
                lookup.entity,
                related.into
            ),
        ))
    }
}

/// One row as an item, by the item field names the transform reads.
fn item(row: &Value, related: &Related) -> Value {
    let mut out = Map::new();
    for (from, to) in related.fields {
        if let Some(v) = json::get(row, from).filter(|v| !v.is_null()) {
            out.insert((*to).to_string(), v.clone());
        }
    }
    Value::Object(out)
}
