//! syncline: keeps Salesforce and ERP workflows in sync over Apache Kafka, exactly once.
//!
//! The folders follow the dataflow: `config` (topology file) → `adapters` (vendor payloads) →
//! `transforms` (canonical mapping) → `schema` (Avro, registry) → `runtime` (workers,
//! transactions) → `ops` (replay, metrics, tracker); `cli` is the command line.

pub mod adapters;
pub mod allocator;
pub mod cli;
pub mod config;
pub mod contract;
pub mod failure;
#[cfg(feature = "fault-injection")]
pub mod faults;
pub mod ops;
pub mod runtime;
pub mod samples;
pub mod schema;
pub mod transforms;
pub mod xref;
