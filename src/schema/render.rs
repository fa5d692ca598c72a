//! Human-readable JSON of decoded Avro values: decimals as exact strings, instants as RFC 3339,
//! dates as `YYYY-MM-DD`, enums as their symbol.
//!
//! Owns: presentation for operators (demo output, `dlq show`). Must not: be used to re-encode.

use apache_avro::Schema;
use apache_avro::schema::{DecimalSchema, UnionSchema};
use apache_avro::types::Value;
use serde_json::{Map, Value as Json, json};

/// Renders `value` (already resolved to `schema`) as JSON.
pub fn to_json(value: &Value, schema: &Schema) -> Json {
    match (value, schema) {
        (Value::Null, _) => Json::Null,
        (Value::Boolean(b), _) => json!(b),
        (Value::Int(i), _) => json!(i),
        (Value::Long(i), _) => json!(i),
        (Value::Float(f), _) => json!(f),
        (Value::Double(f), _) => json!(f),
        (Value::String(s), _) | (Value::Enum(_, s), _) => json!(s),
        (Value::Uuid(u), _) => json!(u.to_string()),
        (Value::Date(days), _) => super::canonical::date_of(*days)
            .map(|d| json!(d.to_string()))
            .unwrap_or(json!(days)),
        (Value::TimestampMillis(ms), _) => chrono::DateTime::from_timestamp_millis(*ms)
            .map(|t| json!(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)))
            .unwrap_or(json!(ms)),
        (Value::Decimal(d), Schema::Decimal(DecimalSchema { scale, .. })) => match <Vec<u8>>::try_from(d) {
            Ok(bytes) => json!(decimal_string(&bytes, *scale as u32)),
            Err(_) => json!("<decimal>"),
        },
        (Value::Bytes(b), _) | (Value::Fixed(_, b), _) => json!(format!("<{} bytes>", b.len())),
        (Value::Union(i, inner), Schema::Union(u)) => to_json(inner, branch(u, *i)),
        (Value::Union(_, inner), _) => to_json(inner, schema),
        (Value::Array(items), Schema::Array(a)) => Json::Array(items.iter().map(|v| to_json(v, &a.items)).collect()),
        (Value::Map(m), Schema::Map(s)) => {
            Json::Object(m.iter().map(|(k, v)| (k.clone(), to_json(v, &s.types))).collect())
        }
        (Value::Record(fields), Schema::Record(r)) => {
            let mut out = Map::new();
            for (name, v) in fields {
                let field_schema = r
                    .fields
                    .iter()
                    .find(|f| &f.name == name)
                    .map(|f| &f.schema)
                    .unwrap_or(&Schema::Null);
                out.insert(name.clone(), to_json(v, field_schema));
            }
            Json::Object(out)
        }
        (other, _) => json!(format!("{other:?}")),
    }
}

fn branch(u: &UnionSchema, index: u32) -> &Schema {
    u.variants().get(index as usize).unwrap_or(&Schema::Null)
}

/// Big-endian two's complement unscaled bytes → exact decimal text.
fn decimal_string(bytes: &[u8], scale: u32) -> String {
    if bytes.len() > 16 {
        return format!("<{}-byte decimal>", bytes.len());
    }
    let fill = if bytes.first().is_some_and(|b| b & 0x80 != 0) {
        0xff
    } else {
        0x00
    };
    let mut full = [fill; 16];
    full[16 - bytes.len()..].copy_from_slice(bytes);
    match rust_decimal::Decimal::try_from_i128_with_scale(i128::from_be_bytes(full), scale) {
        Ok(d) => d.to_string(),
        Err(_) => "<decimal out of range>".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_dates_and_times_render_exactly() {
        let schema = Schema::parse_str(
            r#"{"type":"record","name":"R","fields":[
                {"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":18,"scale":2}},
                {"name":"day","type":{"type":"int","logicalType":"date"}},
                {"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}},
                {"name":"note","type":["null","string"],"default":null}]}"#,
        )
        .unwrap();
        let value = Value::Record(vec![
            (
                "amount".into(),
                Value::Decimal((-1234i64).to_be_bytes().to_vec().into()),
            ),
            ("day".into(), Value::Date(20_783)),
            ("at".into(), Value::TimestampMillis(0)),
            ("note".into(), Value::Union(1, Box::new(Value::String("n".into())))),
        ]);
        let j = to_json(&value, &schema);
        assert_eq!(j["amount"], "-12.34");
        assert_eq!(j["day"], "2026-11-26");
        assert_eq!(j["at"], "1970-01-01T00:00:00.000Z");
        assert_eq!(j["note"], "n");
    }
}
