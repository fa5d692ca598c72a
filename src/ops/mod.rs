//! Operator-facing pieces: dead-letter replay, the business transaction tracker, metrics and
//! health over HTTP.
//!
//! Owns: what operators and dashboards see. Must not: sit on the record hot path except through
//! the metric handles it hands out.

pub mod http;
pub mod metrics;
pub mod replay;
pub mod tracker;
