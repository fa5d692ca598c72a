//! Timestamps as sources write them: ISO-8601 / RFC 3339 strings, epoch milliseconds (number or
//! digit string), and Microsoft's `/Date(ms)/` (Dynamics 365 business events).
//!
//! Owns: turning any of those into epoch milliseconds (UTC), and dates into Avro day numbers.

use serde_json::Value;

/// A value that is not a timestamp or date in any of the accepted forms; says which it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TimeError(String);

/// Epoch milliseconds from a JSON value, or why not.
pub fn instant(v: &Value) -> Result<i64, TimeError> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            .ok_or_else(|| TimeError(format!("{n} is not epoch milliseconds"))),
        Value::String(s) => instant_str(s),
        other => Err(TimeError(format!("{other} is not a timestamp"))),
    }
}

pub fn instant_str(s: &str) -> Result<i64, TimeError> {
    let t = s.trim();
    if let Some(inner) = t.strip_prefix("/Date(").and_then(|r| r.strip_suffix(")/")) {
        // `/Date(1700000000000)/` or `/Date(1700000000000+0100)/`: the offset is informative only.
        let digits = inner
            .split(['+', '-'])
            .next()
            .filter(|d| !d.is_empty())
            .unwrap_or(inner);
        let negative = inner.starts_with('-');
        let ms: i64 = if negative {
            inner[1..].split(['+', '-']).next().unwrap_or("")
        } else {
            digits
        }
        .parse()
        .map_err(|_| TimeError(format!("`{s}` is not a /Date(ms)/ value")))?;
        return Ok(if negative { -ms } else { ms });
    }
    if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()) {
        return t.parse().map_err(|_| TimeError(format!("`{s}` is out of range")));
    }
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(t) {
        return Ok(dt.timestamp_millis());
    }
    // Salesforce writes `2026-11-26T10:15:00.000+0000` (no colon in the offset).
    if let Ok(dt) = chrono::DateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f%z") {
        return Ok(dt.timestamp_millis());
    }
    // No offset at all: SAP often sends UTC without saying so.
    if let Ok(dt) = chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f") {
        return Ok(dt.and_utc().timestamp_millis());
    }
    Err(TimeError(format!(
        "`{s}` is not an ISO-8601 timestamp, epoch milliseconds or /Date(ms)/"
    )))
}

/// Avro `date` (days since 1970-01-01) from `YYYY-MM-DD`, a full timestamp, or `/Date(ms)/`.
pub fn date(v: &Value) -> Result<i32, TimeError> {
    match v {
        Value::String(s) => date_str(s),
        other => Ok(instant(other)?.div_euclid(86_400_000) as i32),
    }
}

pub fn date_str(s: &str) -> Result<i32, TimeError> {
    // `YYYY-MM-DD`, chrono's own date syntax: parsed without interpreting a format string.
    if let Ok(d) = s.trim().parse::<chrono::NaiveDate>() {
        return Ok(crate::schema::canonical::epoch_days(d));
    }
    Ok(instant_str(s)?.div_euclid(86_400_000) as i32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_source_format_reads_to_the_same_instant() {
        let expected = 1_764_151_200_000; // 2025-11-26T10:00:00Z
        for v in [
            json!("2025-11-26T10:00:00Z"),
            json!("2025-11-26T11:00:00+01:00"),
            json!("2025-11-26T10:00:00.000+0000"),
            json!("2025-11-26T10:00:00"),
            json!(1_764_151_200_000i64),
            json!("1764151200000"),
            json!("/Date(1764151200000)/"),
            json!("/Date(1764151200000+0100)/"),
        ] {
            assert_eq!(instant(&v), Ok(expected), "{v}");
        }
        assert!(instant(&json!("yesterday")).is_err());
        assert!(instant(&json!(true)).is_err());
    }

    #[test]
    fn dates_from_dates_and_timestamps() {
        assert_eq!(date(&json!("2026-11-26")), Ok(20_783));
        assert_eq!(date(&json!("/Date(1795651200000)/")), Ok(20_783));
        assert!(date(&json!("26.11.2026")).is_err());
    }
}
