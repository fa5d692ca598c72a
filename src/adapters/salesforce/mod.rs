//! Salesforce events in the three shapes integrations put on Kafka, platform events and change
//! data capture alike.
//!
//! Shapes (detected, not configured):
//! - CometD / Streaming API: `{schema, payload, event: {replayId, EventUuid}}`, optionally
//!   wrapped as `{data: {...}, channel: "/event/Order_Submitted__e"}`;
//! - Pub/Sub API, decoded to JSON: `{replayId, id?, payload: {...}}` or the bare payload;
//! - Kafka Connect source connectors: flat fields plus `ReplayId`, `_ObjectType`, `_EventType`,
//!   `EventUuid`.
//!
//! Owns: shape detection, the change event header, timestamps, and the event's identity
//! (EventUuid for platform events, never ReplayId alone; commitNumber + sequenceNumber +
//! recordId for change events). Gap events carry no field values and are refused with
//! `SF_GAP_EVENT`. Must not: map fields to canonical records.

pub mod change;
pub mod lookups;

use serde_json::{Map, Value};

use crate::adapters::{RawRecord, json, time};
use crate::failure::Failure;
use crate::schema::decimal::Dec;

pub use change::ChangeHeader;
use change::change_header;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    CometD,
    PubSub,
    Connect,
    Bare,
}

/// One Salesforce event, whatever shape it came in.
#[derive(Debug, Clone, PartialEq)]
pub struct SfEvent {
    pub shape: Shape,
    /// `Order_Submitted__e` for platform events; the entity (`Order`, `Account`) for change events.
    pub entity: String,
    pub replay_id: Option<String>,
    pub event_uuid: Option<String>,
    pub change: Option<ChangeHeader>,
    pub occurred_at: i64,
    /// The event's fields (without the change header).
    pub fields: Map<String, Value>,
}

impl SfEvent {
    /// The identity a re-sent copy of this event shares (docs/architecture.md, "Canonical model").
    pub fn identity(&self) -> Result<String, Failure> {
        match &self.change {
            Some(h) => Ok(format!(
                "{}:{}:{}:{}",
                h.entity_name,
                h.record_ids.join(","),
                h.commit_number,
                h.sequence_number
            )),
            // A UUID is unique on its own; the entity is not always known (Pub/Sub payloads).
            None => self.event_uuid.clone().map(|u| format!("event:{u}")).ok_or_else(|| {
                Failure::poison(
                    "MISSING_EVENT_UUID",
                    "platform event without EventUuid: ReplayId alone does not identify an event across org migrations",
                )
            }),
        }
    }

    pub fn field(&self, name: &str) -> Option<&Value> {
        self.fields.get(name).filter(|v| !v.is_null())
    }

    /// A field holding a JSON array, or JSON text of one (what a Salesforce flow writes into a
    /// long text area such as `Lines__c`); `None` when absent.
    pub fn array(&self, name: &str) -> Result<Option<Vec<Value>>, Failure> {
        let value = match self.field(name) {
            None => return Ok(None),
            Some(Value::String(s)) => serde_json::from_str::<Value>(s)
                .map_err(|err| Failure::poison("INVALID_JSON", format!("{name} is not a JSON array: {err}")))?,
            Some(v) => v.clone(),
        };
        match value {
            Value::Array(items) => Ok(Some(items)),
            _ => Err(Failure::poison("WRONG_TYPE", format!("{name} must be a JSON array"))),
        }
    }

    /// A field as trimmed text (numbers as their literal), with the adapter's string checks.
    pub fn text(&self, name: &str) -> Result<Option<String>, Failure> {
        json::text(self.field(name), name)
    }

    /// A text field the event cannot do without.
    pub fn required(&self, name: &str) -> Result<String, Failure> {
        self.text(name)?.ok_or_else(|| json::missing(name))
    }

    /// An exact decimal field; `code` classifies a malformed value.
    pub fn dec<const S: u32>(&self, name: &str, code: &'static str) -> Result<Option<Dec<S>>, Failure> {
        json::dec(self.field(name), name, code)
    }

    /// A date field (`YYYY-MM-DD` or a timestamp) as an Avro date.
    pub fn date(&self, name: &str) -> Result<Option<i32>, Failure> {
        json::date_of(self.field(name), name)
    }
}

/// Reads one record as a Salesforce event.
pub fn parse(raw: &RawRecord<'_>) -> Result<SfEvent, Failure> {
    let v = json::parse_payload(raw.payload)?;
    let Value::Object(mut top) = v else {
        return Err(Failure::poison(
            "NOT_A_SALESFORCE_EVENT",
            "payload is JSON but not an object",
        ));
    };
    // The envelope's parts are moved out of the parsed tree, never copied: the payload is most
    // of the event.
    // CometD wrapped: {data: {...}, channel}
    let mut channel = None;
    if top.contains_key("channel") && is_object(&top, "data") {
        channel = top.get("channel").and_then(Value::as_str).map(str::to_string);
        top = take_object(&mut top, "data");
    }
    let top_object_type = top.get("_ObjectType").and_then(Value::as_str).map(str::to_string);
    let (shape, payload, replay_id, event_uuid) = if is_object(&top, "payload") && is_object(&top, "event") {
        let event = top.get("event");
        let replay = event.and_then(|e| e.get("replayId")).map(text);
        let uuid = event
            .and_then(|e| e.get("EventUuid"))
            .and_then(Value::as_str)
            .map(str::to_string);
        (Shape::CometD, take_object(&mut top, "payload"), replay, uuid)
    } else if is_object(&top, "payload") {
        let uuid = top
            .get("EventUuid")
            .or_else(|| top.get("id"))
            .or_else(|| top.get("payload").and_then(|p| p.get("EventUuid")))
            .and_then(Value::as_str)
            .map(str::to_string);
        let replay = top.get("replayId").map(text);
        (Shape::PubSub, take_object(&mut top, "payload"), replay, uuid)
    } else if top.contains_key("_ObjectType") || top.contains_key("ReplayId") {
        let uuid = top.get("EventUuid").and_then(Value::as_str).map(str::to_string);
        let replay = top.get("ReplayId").map(text);
        (Shape::Connect, std::mem::take(&mut top), replay, uuid)
    } else {
        let uuid = top.get("EventUuid").and_then(Value::as_str).map(str::to_string);
        (Shape::Bare, std::mem::take(&mut top), None, uuid)
    };
    let mut fields = payload;
    let change = match fields.remove("ChangeEventHeader") {
        Some(h) => Some(change_header(&h)?),
        None => None,
    };
    if let Some(h) = &change
        && h.change_type.starts_with("GAP_")
    {
        return Err(Failure::business(
            "SF_GAP_EVENT",
            format!(
                "{} {} for {} {}: gap events carry no field values; re-sync the record from Salesforce",
                h.change_type,
                h.commit_number,
                h.entity_name,
                h.record_ids.join(",")
            ),
        ));
    }
    let entity = match &change {
        Some(h) => h.entity_name.clone(),
        None => channel
            .as_deref()
            .and_then(|c| c.rsplit('/').next())
            .map(str::to_string)
            .or_else(|| fields.get("_ObjectType").and_then(Value::as_str).map(str::to_string))
            .or(top_object_type)
            .or_else(|| raw.header_str("sf_event_type").map(str::to_string))
            .unwrap_or_default(),
    };
    let occurred_at = match &change {
        Some(h) => h.commit_timestamp,
        None => match fields.get("CreatedDate").filter(|v| !v.is_null()) {
            Some(v) => {
                time::instant(v).map_err(|e| Failure::poison("INVALID_TIMESTAMP", format!("CreatedDate: {e}")))?
            }
            None => raw
                .timestamp_ms
                .ok_or_else(|| Failure::poison("MISSING_FIELD", "platform event without CreatedDate"))?,
        },
    };
    Ok(SfEvent {
        shape,
        entity,
        replay_id,
        event_uuid,
        change,
        occurred_at,
        fields,
    })
}

/// `raw`'s payload, in its own shape, with `added` among the event's fields where it has none
/// (a completed change event).
pub fn with_fields(raw: &RawRecord<'_>, added: Map<String, Value>) -> Result<Vec<u8>, Failure> {
    let mut v = json::parse_payload(raw.payload)?;
    let Value::Object(top) = &mut v else {
        return Err(Failure::poison(
            "NOT_A_SALESFORCE_EVENT",
            "payload is JSON but not an object",
        ));
    };
    add_fields(top, added);
    serde_json::to_vec(&v).map_err(|e| Failure::poison("INVALID_JSON", format!("completed event: {e}")))
}

/// Adds `added` where the envelope keeps the event's fields: the same detection as `parse`.
fn add_fields(top: &mut Map<String, Value>, added: Map<String, Value>) {
    let wrapped = top.contains_key("channel") && is_object(top, "data");
    if wrapped && let Some(Value::Object(inner)) = top.get_mut("data") {
        return add_fields(inner, added);
    }
    let fields = match top.get_mut("payload") {
        Some(Value::Object(payload)) => payload,
        _ => top,
    };
    for (k, value) in added {
        if fields.get(&k).is_none_or(Value::is_null) {
            fields.insert(k, value);
        }
    }
}

fn is_object(m: &Map<String, Value>, key: &str) -> bool {
    matches!(m.get(key), Some(Value::Object(_)))
}

/// Moves the object at `key` out of `m` (empty if it is not one).
fn take_object(m: &mut Map<String, Value>, key: &str) -> Map<String, Value> {
    match m.remove(key) {
        Some(Value::Object(o)) => o,
        _ => Map::new(),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse_value(v: Value) -> Result<SfEvent, Failure> {
        let bytes = v.to_string().into_bytes();
        parse(&RawRecord {
            topic: "sf",
            partition: 0,
            offset: 0,
            key: None,
            payload: Some(&bytes),
            headers: &[],
            timestamp_ms: None,
        })
    }

    fn order_fields() -> Value {
        json!({"Order_Id__c": "801A", "CreatedDate": "2025-11-26T10:00:00.000+0000", "Extra__c": {"ignored": true}})
    }

    #[test]
    fn the_three_platform_event_shapes_give_the_same_event() {
        let uuid = "c5c9b3a2-6d11-4f0e-9a33-5b7e0c2f1d10";
        let inner = json!({"schema": "abc", "payload": order_fields(), "event": {"replayId": 42, "EventUuid": uuid}});
        let wrapped = json!({"data": inner.clone(), "channel": "/event/Order_Submitted__e"});
        let pubsub = json!({"replayId": "AAAA", "id": uuid, "payload": order_fields()});
        let mut connect = order_fields();
        connect["ReplayId"] = json!("42");
        connect["_ObjectType"] = json!("Order_Submitted__e");
        connect["_EventType"] = json!("event");
        connect["EventUuid"] = json!(uuid);
        let events: Vec<SfEvent> = [wrapped, pubsub, connect]
            .into_iter()
            .map(|v| parse_value(v).unwrap())
            .collect();
        assert_eq!(
            events.iter().map(|e| e.shape).collect::<Vec<_>>(),
            vec![Shape::CometD, Shape::PubSub, Shape::Connect]
        );
        for e in &events {
            assert_eq!(e.identity().unwrap(), format!("event:{uuid}"));
            assert_eq!(e.occurred_at, 1_764_151_200_000);
            assert_eq!(e.field("Order_Id__c"), Some(&json!("801A")));
        }
        assert_eq!(events[0].entity, "Order_Submitted__e");
        assert_eq!(events[2].entity, "Order_Submitted__e");
        assert_eq!(parse_value(inner).unwrap().shape, Shape::CometD);
    }

    #[test]
    fn platform_events_without_event_uuid_have_no_identity() {
        let e = parse_value(json!({"replayId": 7, "payload": order_fields()})).unwrap();
        assert_eq!(e.identity().unwrap_err().code, "MISSING_EVENT_UUID");
    }

    #[test]
    fn change_events_with_epoch_times_and_bitmap_changed_fields() {
        let e = parse_value(json!({"payload": {"ChangeEventHeader": {
            "entityName": "Account", "recordIds": ["001A"], "changeType": "UPDATE", "changeOrigin": "com/salesforce/api/soap/58.0",
            "transactionKey": "0002", "sequenceNumber": 1, "commitTimestamp": 1764151200000i64, "commitNumber": 10953,
            "commitUser": "005x", "changedFields": ["0x400080", "3-0x01"], "nulledFields": [], "diffFields": []},
            "Name": "Acme", "LastModifiedDate": "2025-11-26T10:00:00Z"}}))
        .unwrap();
        let h = e.change.as_ref().unwrap();
        assert_eq!(h.changed_fields, vec!["0x400080", "3-0x01"]);
        assert_eq!(e.identity().unwrap(), "Account:001A:10953:1");
        assert_eq!(e.entity, "Account");
        assert_eq!(e.occurred_at, 1_764_151_200_000);
        assert!(e.field("ChangeEventHeader").is_none());
    }

    #[test]
    fn gap_events_are_refused_never_mapped() {
        for change_type in ["GAP_UPDATE", "GAP_CREATE", "GAP_OVERFLOW"] {
            let err = parse_value(
                json!({"ChangeEventHeader": {"entityName": "Order", "recordIds": ["801A"], "changeType": change_type,
                "sequenceNumber": 1, "commitTimestamp": "2025-11-26T10:00:00Z", "commitNumber": 1}}),
            )
            .unwrap_err();
            assert_eq!(err.code, "SF_GAP_EVENT");
            assert!(err.message.contains("re-sync"), "{}", err.message);
        }
    }

    #[test]
    fn missing_header_fields_are_specific() {
        let err = parse_value(
            json!({"ChangeEventHeader": {"entityName": "Order", "recordIds": ["801A"], "changeType": "UPDATE",
            "commitTimestamp": 1, "commitNumber": 1}}),
        )
        .unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            ("MISSING_FIELD", "ChangeEventHeader.sequenceNumber is missing")
        );
        assert_eq!(parse_value(json!([1])).unwrap_err().code, "NOT_A_SALESFORCE_EVENT");
    }
}
