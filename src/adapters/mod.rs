//! Source adapters: detect and parse what Salesforce and the ERPs publish into typed source events.
//!
//! Owns: payload shapes (envelopes, CloudEvents modes, vendor field names, time formats) and the
//! poison errors for input that cannot be read. Must not: map to canonical records (that is
//! `transforms`) or touch Kafka.

pub mod erp;
pub mod json;
pub mod salesforce;
pub mod time;

/// Adapter kinds accepted in `[[worker]].adapter`.
pub const KINDS: [&str; 5] = ["salesforce", "sap_s4", "d365_fo", "generic_erp", "canonical"];

/// One consumed Kafka record, as adapters and transforms see it.
#[derive(Debug, Clone, Copy)]
pub struct RawRecord<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    pub payload: Option<&'a [u8]>,
    pub headers: &'a [(String, Vec<u8>)],
    pub timestamp_ms: Option<i64>,
}

impl RawRecord<'_> {
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_slice())
    }

    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(|v| std::str::from_utf8(v).ok())
    }
}
