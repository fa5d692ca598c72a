//! CloudEvents 1.0 over Kafka: structured mode (the whole event is the JSON value) and binary
//! mode (attributes in `ce_*` headers, the data is the value).
//!
//! Owns: detecting the mode and reading the required attributes. Must not: interpret `type`.

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::adapters::{RawRecord, json};
use crate::failure::Failure;

#[derive(Debug, Clone)]
pub struct CloudEvent<'a> {
    pub id: String,
    pub source: String,
    pub event_type: String,
    pub time_ms: Option<i64>,
    pub subject: Option<String>,
    pub data: json::Object<'a>,
    pub binary_mode: bool,
}

pub fn parse<'a>(raw: &RawRecord<'a>) -> Result<CloudEvent<'a>, Failure> {
    if raw.header("ce_specversion").is_some() {
        return binary(raw);
    }
    let text = structured_text(raw.payload)?;
    let e: Structured<'_> =
        serde_json::from_str(text).map_err(|e| Failure::poison("INVALID_JSON", format!("payload is not JSON: {e}")))?;
    let Some(specversion) = e.specversion else {
        return Err(Failure::poison(
            "NOT_A_CLOUDEVENT",
            "neither a `specversion` attribute (structured mode) nor a `ce_specversion` header (binary mode)",
        ));
    };
    let text = |v: Option<&RawValue>, name: &str| v.map(|r| json::raw_text(r, name)).transpose().map(Option::flatten);
    let required = |v: Option<&RawValue>, name: &str| text(v, name)?.ok_or_else(|| json::missing(name));
    check_version(&required(Some(specversion), "specversion")?)?;
    let data = match (e.data, e.data_base64) {
        (Some(d), _) => json::Object::read(d)?,
        (None, Some(_)) => {
            return Err(Failure::poison(
                "UNSUPPORTED_DATA",
                "`data_base64` events are not JSON business events",
            ));
        }
        (None, None) => json::Object::Tree(Value::Null),
    };
    let time_ms = e.time.map(|t| json::raw_instant(t, "time")).transpose()?;
    Ok(CloudEvent {
        id: required(e.id, "id")?,
        source: required(e.source, "source")?,
        event_type: required(e.event_type, "type")?,
        time_ms,
        subject: text(e.subject, "subject")?,
        data,
        binary_mode: false,
    })
}

/// Whether `payload` is a structured-mode event (a JSON object with a `specversion`), found
/// without building its tree: profiles whose ERP also sends its own envelope ask this first.
/// Anything else, including payloads that are not JSON, answers no.
pub fn is_structured(payload: Option<&[u8]>) -> bool {
    structured_text(payload)
        .ok()
        .and_then(|text| serde_json::from_str::<&RawValue>(text).ok())
        .and_then(|top| json::Object::read(top).ok())
        .is_some_and(|top| top.value("specversion").is_some())
}

/// The attributes of a structured-mode event that syncline reads. The others are skipped
/// unbuilt, and the attributes and `data`'s members stay slices of the payload until read: the
/// envelope was a third of the cost of reading an ERP event. (JSON `null` reads as absent.)
#[derive(Deserialize)]
struct Structured<'a> {
    #[serde(borrow)]
    specversion: Option<&'a RawValue>,
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    source: Option<&'a RawValue>,
    #[serde(borrow, rename = "type")]
    event_type: Option<&'a RawValue>,
    #[serde(borrow)]
    time: Option<&'a RawValue>,
    #[serde(borrow)]
    subject: Option<&'a RawValue>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    #[serde(borrow)]
    data_base64: Option<&'a RawValue>,
}

/// The payload's text, once it is known to be a JSON object.
fn structured_text(payload: Option<&[u8]>) -> Result<&str, Failure> {
    let is_object = payload.is_some_and(|p| p.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{'));
    if !is_object {
        // Not an object: say whether it is JSON at all (the payload checks name what is wrong).
        json::parse_payload(payload)?;
        return Err(Failure::poison("NOT_A_CLOUDEVENT", "payload is JSON but not an object"));
    }
    json::payload_text(payload)
}

fn binary<'a>(raw: &RawRecord<'a>) -> Result<CloudEvent<'a>, Failure> {
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
        data: json::Object::Tree(json::parse_payload(raw.payload)?),
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
            (s.id, s.event_type, s.time_ms, s.data.to_value()),
            (b.id, b.event_type, b.time_ms, b.data.to_value())
        );
        assert!(b.binary_mode && !s.binary_mode);
    }

    #[test]
    fn attributes_with_escapes_numbers_or_nulls_read_as_before() {
        let e = br#"{"specversion":"1.0","id":42,"source":" /erp/\u00e9u ","type":"t.\"x\"","time":1764151200000,"subject":null,"data":{"a":1}}"#;
        let c = parse(&raw(e, &[])).unwrap();
        assert_eq!(
            (c.id.as_str(), c.source.as_str(), c.event_type.as_str()),
            ("42", "/erp/\u{e9}u", "t.\"x\"")
        );
        assert_eq!((c.time_ms, c.subject), (Some(1_764_151_200_000), None));
        let blank = br#"{"specversion":"1.0","id":"  ","source":"s","type":"t"}"#;
        assert_eq!(parse(&raw(blank, &[])).unwrap_err().code, "MISSING_FIELD");
        let object_id = br#"{"specversion":"1.0","id":{"x":1},"source":"s","type":"t"}"#;
        assert_eq!(parse(&raw(object_id, &[])).unwrap_err().code, "WRONG_TYPE");
        let base64 = br#"{"specversion":"1.0","id":"e","source":"s","type":"t","data":null,"data_base64":"AAE="}"#;
        assert_eq!(parse(&raw(base64, &[])).unwrap_err().code, "UNSUPPORTED_DATA");
        let bad_time = br#"{"specversion":"1.0","id":"e","source":"s","type":"t","time":"yesterday"}"#;
        assert_eq!(parse(&raw(bad_time, &[])).unwrap_err().code, "INVALID_TIMESTAMP");
    }

    #[test]
    fn structured_events_are_told_from_vendor_envelopes_without_a_tree() {
        let yes = |p: &[u8]| is_structured(Some(p));
        assert!(yes(br#" {"specversion":"1.0","id":"e","data":{}}"#));
        assert!(!yes(br#"{"BusinessEventId":"x","specversion":null}"#));
        assert!(!yes(br#"{"BusinessEventId":"x"}"#));
        assert!(!yes(b"[1]") && !yes(b"{not json") && !is_structured(None));
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
