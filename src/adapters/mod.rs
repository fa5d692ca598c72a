//! Source adapters: detect and parse what Salesforce and the ERPs publish into typed source events.
//!
//! Owns: the list of adapter kinds a worker may name. Must not: map to canonical records (that is
//! `transforms`) or touch Kafka.

/// Adapter kinds accepted in `[[worker]].adapter`.
pub const KINDS: [&str; 4] = ["salesforce", "sap_s4", "d365_fo", "generic_erp"];
