//! The worker runtime: consume → transform → produce in Kafka transactions, with dedupe,
//! retries, dead letters, parking and state stores.
//!
//! Owns: everything between a source record and a committed output. Must not: parse vendor
//! payloads (adapters) or map fields (transforms).

pub mod dedupe;
pub mod dlq;
pub mod enrich;
pub mod parking;
pub mod pipeline;
pub mod retry;
pub mod state;
pub mod status;
pub mod supervisor;
pub mod worker;
pub mod xref_feed;
