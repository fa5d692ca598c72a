//! CloudEvents 1.0 over Kafka: structured mode (the whole event is the JSON value) and binary
//! mode (attributes in `ce_*` headers, the data is the value).
//!
//! Owns: detecting the mode and reading the required attributes. Must not: interpret `type`.

use serde::Deserialize;
use serde_json::Value;

use crate::adapters::{RawRecord, json};
use crate::failure::Failure;

#[derive(Debug, Clone, PartialEq)]
pub struct CloudEvent {
    pub id: String,
    pub source: String,
    pub event_type: String,
    pub time_ms: Option<i64>,
    pub subject: Option<String>,
    pub data: Value,
    pub binary_mode: bool,
}

pub fn parse(raw: &RawRecord<'_>) -> Result<CloudEvent, Failure> {
    if raw.header("ce_specversion").is_some() {
        return binary(raw);
    }
    let e = structured(raw.payload)?;
    let Some(specversion) = e.specversion.as_ref().filter(|v| !v.is_null()) else {
        return Err(Failure::poison(
            "NOT_A_CLOUDEVENT",
            "neither a `specversion` attribute (structured mode) nor a `ce_specversion` header (binary mode)",
        ));
    };
    let required = |v: Option<&Value>, name: &str| json::text(v, name)?.ok_or_else(|| json::missing(name));
    check_version(&required(Some(specversion), "specversion")?)?;
    let data = match (e.data.filter(|d| !d.is_null()), &e.data_base64) {
        (Some(d), _) => d,
        (None, Some(b)) if !b.is_null() => {
            return Err(Failure::poison(
                "UNSUPPORTED_DATA",
                "`data_base64` events are not JSON business events",
            ));
        }
        (None, _) => Value::Null,
    };
    let time_ms = match e.time.as_ref().filter(|t| !t.is_null()) {
        Some(t) => Some(
            crate::adapters::time::instant(t)
                .map_err(|err| Failure::poison("INVALID_TIMESTAMP", format!("field `time`: {err}")))?,
        ),
        None => None,
    };
    Ok(CloudEvent {
        id: required(e.id.as_ref(), "id")?,
        source: required(e.source.as_ref(), "source")?,
        event_type: required(e.event_type.as_ref(), "type")?,
        time_ms,
        subject: json::text(e.subject.as_ref(), "subject")?,
        data,
        binary_mode: false,
    })
}

/// The attributes of a structured-mode event that syncline reads. Deserializing into this instead
/// of a `Value` skips the other attributes unbuilt and moves `data` out instead of copying it:
/// the envelope was a third of the cost of reading an ERP event.
#[derive(Deserialize)]
struct Structured {
    specversion: Option<Value>,
    id: Option<Value>,
    source: Option<Value>,
    #[serde(rename = "type")]
    event_type: Option<Value>,
    time: Option<Value>,
    subject: Option<Value>,
    data: Option<Value>,
    data_base64: Option<Value>,
}

fn structured(payload: Option<&[u8]>) -> Result<Structured, Failure> {
    let is_object = payload.is_some_and(|p| p.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{'));
    if !is_object {
        // Not an object: say whether it is JSON at all (the payload checks name what is wrong).
        json::parse_payload(payload)?;
        return Err(Failure::poison("NOT_A_CLOUDEVENT", "payload is JSON but not an object"));
    }
    let text = json::payload_text(payload)?;
    serde_json::from_str(text).map_err(|e| Failure::poison("INVALID_JSON", format!("payload is not JSON: {e}")))
}

fn binary(raw: &RawRecord<'_>) -> Result<CloudEvent, Failure> {
    let header = |name: &str| -> Result<Option<String>, Failure> {
        raw.header(name)
            .map(|v| {
                std::str::from_utf8(v)
                    .map(|s| s.to_string())
                    .map_err(|_| Failure::poison("INVALID_UTF8", format!("header `{name}` is not UTF-8")))
            })
            .transpose()
    };
    let required = |name: &str| -> Result<String, Failure> {
        header(name)?.ok_or_else(|| {
            Failure::poison(
                "MISSING_FIELD",
                format!("binary-mode CloudEvent without header `{name}`"),
            )
        })
    };
    check_version(&required("ce_specversion")?)?;
    let time_ms = header("ce_time")?
        .map(|t| {
            crate::adapters::time::instant_str(&t)
                .map_err(|e| Failure::poison("INVALID_TIMESTAMP", format!("header `ce_time`: {e}")))
        })
        .transpose()?;
    Ok(CloudEvent {
        id: required("ce_id")?,
        source: required("ce_source")?,
        event_type: required("ce_type")?,
        time_ms,
        subject: header("ce_subject")?,
        data: json::parse_payload(raw.payload)?,
        binary_mode: true,
    })
}

fn check_version(v: &str) -> Result<(), Failure> {
    if v == "1.0" {
        Ok(())
    } else {
        Err(Failure::poison(
            "UNSUPPORTED_SPECVERSION",
            format!("CloudEvents specversion `{v}`; syncline reads 1.0"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw<'a>(payload: &'a [u8], headers: &'a [(String, Vec<u8>)]) -> RawRecord<'a> {
        RawRecord {
            topic: "t",
            partition: 0,
            offset: 0,
            key: None,
            payload: Some(payload),
            headers,
            timestamp_ms: None,
        }
    }

    #[test]
    fn structured_and_binary_modes_read_the_same_event() {
        let structured = br#"{"specversion":"1.0","id":"e1","source":"/erp/na","type":"t.x","time":"2025-11-26T10:00:00Z","data":{"a":1}}"#;
        let s = parse(&raw(structured, &[])).unwrap();
        let headers: Vec<(String, Vec<u8>)> = [
            ("ce_specversion", "1.0"),
            ("ce_id", "e1"),
            ("ce_source", "/erp/na"),
            ("ce_type", "t.x"),
            ("ce_time", "2025-11-26T10:00:00Z"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect();
        let b = parse(&raw(br#"{"a":1}"#, &headers)).unwrap();
        assert_eq!(
            (s.id, s.event_type, s.time_ms, s.data.clone()),
            (b.id, b.event_type, b.time_ms, b.data)
        );
        assert!(b.binary_mode && !s.binary_mode);
    }

    #[test]
    fn not_cloudevents_is_poison_with_a_code() {
        assert_eq!(
            parse(&raw(br#"{"hello":1}"#, &[])).unwrap_err().code,
            "NOT_A_CLOUDEVENT"
        );
        assert_eq!(parse(&raw(br#"[1]"#, &[])).unwrap_err().code, "NOT_A_CLOUDEVENT");
        let v03 = br#"{"specversion":"0.3","id":"e","source":"s","type":"t"}"#;
        assert_eq!(parse(&raw(v03, &[])).unwrap_err().code, "UNSUPPORTED_SPECVERSION");
        let no_id = br#"{"specversion":"1.0","source":"s","type":"t"}"#;
        assert_eq!(parse(&raw(no_id, &[])).unwrap_err().code, "MISSING_FIELD");
    }
}
