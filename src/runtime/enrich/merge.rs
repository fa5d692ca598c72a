//! The answer side of enrichment: finding the entity in an answer, and merging its fields into
//! the event's data under the profile's names, without overwriting what the event says.
//!
//! Owns: JSON paths into the event's data (read, fill, set), SAP's blank values, and OData key
//! quoting. Must not: call anything or decide what a failure means (the enricher does).

use serde_json::{Map, Value};

use crate::adapters::erp::Profile;
use crate::adapters::erp::lookups::{Lookup, Shape};
use crate::adapters::erp::profile::Field;
use crate::adapters::json;

/// The entity of an answer in the lookup's shape.
pub(super) fn entity(answer: &Value, shape: Shape) -> Option<&Map<String, Value>> {
    match shape {
        Shape::ODataV2Entity => answer.get("d")?.as_object(),
        Shape::ODataV4First => answer.get("value")?.as_array()?.first()?.as_object(),
    }
}

pub(super) fn is_empty_collection(answer: &Value) -> bool {
    answer
        .get("value")
        .and_then(Value::as_array)
        .is_some_and(|rows| rows.is_empty())
}

/// Copies the answer's fields into the event where the event has none (what the event says
/// wins over what the API says).
pub(super) fn merge(data: &mut Map<String, Value>, p: &Profile, lookup: &Lookup, entity: &Map<String, Value>) {
    for (from, to) in lookup.copy {
        fill(data, p.path(*to), at(entity, from));
    }
    let Some(items) = &lookup.items else {
        return;
    };
    let rows: &[Value] = at(entity, items.path)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    for (from, to) in items.first {
        fill(data, p.path(*to), rows.first().and_then(|r| json::get(r, from)));
    }
    if items.fields.is_empty() {
        return;
    }
    let lines: Vec<Value> = rows
        .iter()
        .map(|row| {
            let mut line = Map::new();
            for (from, to) in items.fields {
                if let Some(v) = json::get(row, from).filter(|v| !is_blank(v)) {
                    line.insert(p.line_path(*to).to_string(), v.clone());
                }
            }
            Value::Object(line)
        })
        .collect();
    fill(data, p.path(Field::Lines), Some(&Value::Array(lines)));
}

/// The value at a dotted path of an object (`json::get` for a map).
fn at<'a>(map: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    match path.split_once('.') {
        Some((first, rest)) => json::get(map.get(first)?, rest),
        None => map.get(path).filter(|v| !v.is_null()),
    }
}

pub(super) fn fill(data: &mut Map<String, Value>, path: Option<&str>, value: Option<&Value>) {
    if let (Some(path), Some(v)) = (path, value.filter(|v| !is_blank(v)))
        && text_or_value(data, Some(path)).is_none()
    {
        set(data, path, v.clone());
    }
}

/// SAP sends unset fields as empty strings: they are no value.
pub(super) fn is_blank(v: &Value) -> bool {
    v.is_null() || v.as_str().is_some_and(|s| s.trim().is_empty())
}

pub(super) fn text_or_value<'a>(data: &'a Map<String, Value>, path: Option<&str>) -> Option<&'a Value> {
    at(data, path?).filter(|v| !is_blank(v))
}

pub(super) fn text(data: &Map<String, Value>, path: Option<&str>) -> Option<String> {
    match text_or_value(data, path)? {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub(super) fn set(data: &mut Map<String, Value>, path: &str, value: Value) {
    let mut parts = path.split('.').peekable();
    let mut cur = data;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            cur.insert(part.to_string(), value);
            return;
        }
        let next = cur.entry(part.to_string()).or_insert_with(|| Value::Object(Map::new()));
        if !next.is_object() {
            *next = Value::Object(Map::new());
        }
        let Value::Object(m) = next else {
            return;
        };
        cur = m;
    }
}

/// What a key keeps as it is in a URL: the unreserved characters, and the quote (doubled
/// inside an OData string literal, not encoded).
const KEY_KEEPS: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'\'');

/// A document number inside an OData key literal (`'…'`) and a URL: quotes doubled, the rest
/// percent-encoded.
pub(super) fn encode_key(key: &str) -> String {
    percent_encoding::utf8_percent_encode(&key.replace('\'', "''"), KEY_KEEPS).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::erp::lookups::SAP_S4;
    use crate::adapters::erp::profile::SAP_S4 as SAP;
    use serde_json::Map;
    use serde_json::json;

    #[test]
    fn a_delivery_answer_fills_items_and_the_sales_order_without_overwriting_the_event() {
        let mut data = json!({"OutboundDelivery": "80003121", "OverallGoodsMovementStatus": "C"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let answer = json!({"d": {
            "DeliveryDocument": "80003121",
            "OverallGoodsMovementStatus": "A",
            "to_DeliveryDocumentItem": {"results": [
                {"DeliveryDocumentItem": "000010", "ReferenceSDDocument": "4500017342",
                 "ReferenceSDDocumentItem": "10", "Material": "TG11", "ActualDeliveryQuantity": "2.000",
                 "DeliveryQuantityUnit": "PC"}
            ]}
        }});
        let lookup = &SAP_S4[0];
        merge(
            &mut data,
            &SAP,
            lookup,
            entity(&answer, lookup.shape).unwrap_or(&Map::new()),
        );
        assert_eq!(data["SalesOrder"], json!("4500017342"));
        assert_eq!(
            data["OverallGoodsMovementStatus"],
            json!("C"),
            "the event's own value wins"
        );
        assert_eq!(data["Items"][0]["Material"], json!("TG11"));
        assert_eq!(data["Items"][0]["Quantity"], json!("2.000"));
        assert_eq!(data["Items"][0]["Item"], json!("000010"));
    }

    #[test]
    fn keys_are_quoted_and_encoded_for_odata() {
        assert_eq!(encode_key("4500017342"), "4500017342");
        assert_eq!(encode_key("O'Neil 1"), "O''Neil%201");
    }

    #[test]
    fn blank_sap_values_are_no_values() {
        let mut data = Map::new();
        fill(&mut data, Some("PurchaseOrderByCustomer"), Some(&json!("")));
        assert!(data.is_empty());
        set(&mut data, "a.b", json!(1));
        assert_eq!(text(&data, Some("a.b")).as_deref(), Some("1"));
    }
}
