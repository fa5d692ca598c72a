//! Operator-facing pieces: dead-letter replay, the business transaction tracker, customer
//! governance decisions, and metrics and health over HTTP.
//!
//! Owns: what operators and dashboards see. Must not: sit on the record hot path (the metric
//! handles workers update live in `telemetry`).

pub mod customers;
pub mod http;
pub mod replay;
pub mod tracker;
