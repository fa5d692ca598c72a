//! The `ChangeEventHeader` of a Change Data Capture event: which records changed, how, in
//! which transaction, and which fields.
//!
//! Owns: reading the header (names or Pub/Sub bitmaps for the changed fields, epoch or ISO
//! commit times). Must not: judge the change (gap events are refused by the caller).

use serde_json::Value;

use super::text;
use crate::adapters::{json, time};
use crate::failure::Failure;

/// The `ChangeEventHeader` of a change data capture event.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeHeader {
    pub entity_name: String,
    pub record_ids: Vec<String>,
    /// CREATE, UPDATE, DELETE, UNDELETE, or GAP_* / GAP_OVERFLOW.
    pub change_type: String,
    pub change_origin: Option<String>,
    pub transaction_key: Option<String>,
    pub sequence_number: i64,
    pub commit_timestamp: i64,
    pub commit_number: i64,
    pub commit_user: Option<String>,
    /// Field names, or opaque hex bitmaps (`0x400080`) as the Pub/Sub API sends them.
    pub changed_fields: Vec<String>,
    pub nulled_fields: Vec<String>,
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|items| items.iter().filter(|i| !i.is_null()).map(text).collect())
        .unwrap_or_default()
}

pub(super) fn change_header(h: &Value) -> Result<ChangeHeader, Failure> {
    if !h.is_object() {
        return Err(Failure::poison("WRONG_TYPE", "ChangeEventHeader must be an object"));
    }
    let number = |name: &str| -> Result<i64, Failure> {
        json::opt_i64(h, name)?
            .ok_or_else(|| Failure::poison("MISSING_FIELD", format!("ChangeEventHeader.{name} is missing")))
    };
    let commit_timestamp = {
        let v = json::get(h, "commitTimestamp")
            .ok_or_else(|| Failure::poison("MISSING_FIELD", "ChangeEventHeader.commitTimestamp is missing"))?;
        time::instant(v).map_err(|e| Failure::poison("INVALID_TIMESTAMP", format!("commitTimestamp: {e}")))?
    };
    let record_ids = strings(h.get("recordIds"));
    if record_ids.is_empty() {
        return Err(Failure::poison("MISSING_FIELD", "ChangeEventHeader.recordIds is empty"));
    }
    Ok(ChangeHeader {
        entity_name: json::req_str(h, "entityName")?,
        record_ids,
        change_type: json::req_str(h, "changeType")?,
        change_origin: json::opt_str(h, "changeOrigin")?,
        transaction_key: json::opt_str(h, "transactionKey")?,
        sequence_number: number("sequenceNumber")?,
        commit_timestamp,
        commit_number: number("commitNumber")?,
        commit_user: json::opt_str(h, "commitUser")?,
        changed_fields: strings(h.get("changedFields")),
        nulled_fields: strings(h.get("nulledFields")),
    })
}
