//! syncline: keeps Salesforce and ERP workflows in sync over Apache Kafka, exactly once.
//!
//! A record flows `adapters` (vendor payloads) → `transforms` (canonical mapping) → `schema`
//! (canonical model, Avro, registry) inside the `runtime` (workers, transactions, state), read
//! from and written to `kafka`; `ops` (replay, tracker, health) and `cli` stand beside the flow.
//!
//! Layers, lowest first; a module uses only modules of lower layers (and its own), which
//! `tests/layering.rs` checks on every build:
//!
//! 0. `duration`, `failure`, `allocator`, `faults`, `telemetry`: ground, nothing of syncline
//! 1. `schema`, `api`: the canonical model (records, lifecycles), Avro, the registry; vendor API
//!    connections
//! 2. `xref`: the master-data cross-reference table
//! 3. `adapters`: vendor payload shapes
//! 4. `transforms`: source events to canonical records
//! 5. `config`: the topology file, validated against the catalogs below it
//! 6. `kafka`: clients and the transactional outbox
//! 7. `runtime`: workers, pipeline, stores, supervisor
//! 8. `ops`: dead-letter tools, tracker, HTTP endpoint
//! 9. `samples`: the sample payloads
//! 10. `contract`: contract cases (`syncline test`)
//! 11. `app`: the one start-up path of a process (workers, tracker, endpoint)
//! 12. `cli`: the command line

pub mod adapters;
pub mod allocator;
pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod contract;
pub mod duration;
pub mod failure;
#[cfg(feature = "fault-injection")]
pub mod faults;
pub mod kafka;
pub mod ops;
pub mod runtime;
pub mod samples;
pub mod schema;
pub mod telemetry;
pub mod transforms;
pub mod xref;
