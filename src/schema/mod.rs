//! The canonical model: schema files, Rust types, the Avro codec and the registry.
//!
//! Owns: everything between a canonical Rust value and Confluent wire-format bytes, and the
//! evolution rules of `schemas/`. Must not: know about Salesforce or ERP payloads.

pub mod canonical;
pub mod catalog;
pub mod codec;
pub mod compat;
pub mod decimal;
pub mod encoder;
pub mod examples;
pub mod lifecycle;
pub mod registry;
pub mod render;

use std::path::PathBuf;

pub use catalog::{Catalog, SchemaVersion};
pub use codec::{Codec, CodecError};

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a valid Avro schema: {message}", .path.display())]
    Parse { path: PathBuf, message: String },
    #[error("{}: schema files must be named v<N>.avsc", .0.display())]
    BadFileName(PathBuf),
    #[error("no schema folder `{0}` under schemas/")]
    UnknownRecord(String),
    #[error("schemas/{record}/v{version}.avsc does not exist")]
    UnknownVersion { record: String, version: u32 },
}
