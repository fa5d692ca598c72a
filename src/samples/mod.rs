//! The sample payloads under `samples/`: realistic Salesforce and ERP records for the demo,
//! contract cases and tests.
//!
//! Owns: reading a sample file into a Kafka record (value and headers), with `{{RUN}}` replaced
//! so a demo can run twice without its events being deduplicated. A `*.binary.json` sample is a
//! binary-mode CloudEvent: `{"headers": {...}, "data": {...}}`. Must not: be used by workers.

pub mod vendor_api;

use std::path::Path;

/// A record ready to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleRecord {
    pub value: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
}

#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

/// Reads and parses a sample file, substituting `run` for every `{{RUN}}`.
fn read_json<T: serde::de::DeserializeOwned>(path: &Path, run: &str) -> Result<T, SampleError> {
    let invalid = |message: String| SampleError::Invalid {
        path: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| invalid(e.to_string()))?
        .replace("{{RUN}}", run);
    serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))
}

/// Reads `path` as one record, substituting `run` for every `{{RUN}}`.
pub fn load(path: &Path, run: &str) -> Result<SampleRecord, SampleError> {
    let v: serde_json::Value = read_json(path, run)?;
    let is_binary = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(".binary.json"));
    if !is_binary {
        // Re-serialized compactly, as a connector would write it.
        return Ok(SampleRecord {
            value: v.to_string().into_bytes(),
            headers: vec![],
        });
    }
    let headers = v["headers"]
        .as_object()
        .ok_or_else(|| SampleError::Invalid {
            path: path.display().to_string(),
            message: "a binary sample needs a `headers` object".into(),
        })?
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().as_bytes().to_vec()))
        .collect();
    Ok(SampleRecord {
        value: v["data"].to_string().into_bytes(),
        headers,
    })
}

/// The entries of a cross-reference sample (`samples/mdm/*.json`) as `(key, value)` records.
pub fn xref_records(path: &Path, run: &str) -> Result<Vec<(String, Vec<u8>)>, SampleError> {
    let entries: Vec<crate::xref::XrefEntry> = read_json(path, run)?;
    entries
        .iter()
        .map(|e| {
            serde_json::to_vec(e)
                .map(|v| (e.reference(), v))
                .map_err(|err| SampleError::Invalid {
                    path: path.display().to_string(),
                    message: err.to_string(),
                })
        })
        .collect()
}
