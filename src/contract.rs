//! Mapping contract tests without a broker: `syncline test`.
//!
//! A case file (TOML) names a worker of the topology, gives master-data entries and input
//! records, and expects outputs (field subsets), dead letters and parked records. Cases run
//! through the same [`Pipeline`] that `syncline run` uses — adapters, transform, dedupe, holds,
//! parking, status ledger, routing and Avro encoding against the local `schemas/` — with an
//! in-memory outbox instead of a Kafka transaction. Must not: reimplement any of that logic.
//!
//! ```toml
//! name = "SAP order created becomes ACCEPTED"
//! worker = "erp-order-status"
//! master_data = [ { type = "account", salesforce_id = "001A", erp_customer_id = "C1" } ]
//!
//! [[input]]
//! key = "5000"
//! file = "samples/erp/sap_s4/salesorder.created.json"   # or: json = '''{...}'''
//!
//! [[expect.output]]
//! topic = "o2c.order-status"
//! fields = { status = "ACCEPTED", erp_instance = "erp-na", "meta.source_system" = "sap_s4" }
//!
//! [[expect.dead_letter]]
//! code = "UNKNOWN_EVENT_TYPE"
//! ```
//!
//! Why one file of ~430 lines: a case's reading, running and checking is one story a case author
//! follows from top to bottom; most of the length is the expectation checks and their messages.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rdkafka::Timestamp;
use rdkafka::message::{Header, OwnedHeaders, OwnedMessage};
use serde::{Deserialize, Serialize};

use crate::config::Topology;
use crate::kafka::txn::{Captured, Outbox};
use crate::runtime::dlq::header;
use crate::runtime::pipeline::{Pending, Pipeline};
use crate::runtime::xref_feed::Xref;
use crate::schema::{Catalog, Codec, render};
use crate::telemetry::Metrics;
use crate::xref::{XrefEntry, XrefTable};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    pub worker: String,
    #[serde(default)]
    pub master_data: Vec<XrefEntry>,
    /// Substituted for `{{RUN}}` in sample files.
    #[serde(default = "default_run")]
    pub run: String,
    #[serde(rename = "input")]
    pub inputs: Vec<Input>,
    #[serde(default)]
    pub expect: Expect,
}

fn default_run() -> String {
    "0000test".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// Defaults to the worker's first input topic.
    #[serde(default)]
    pub topic: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The value as JSON text.
    #[serde(default)]
    pub json: Option<String>,
    /// A sample file (relative to the case file, or to the current directory).
    #[serde(default)]
    pub file: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    #[serde(default, rename = "output")]
    pub outputs: Vec<ExpectOutput>,
    #[serde(default, rename = "dead_letter")]
    pub dead_letters: Vec<ExpectDeadLetter>,
    #[serde(default)]
    pub parked: Vec<ExpectParked>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectOutput {
    pub topic: String,
    #[serde(default)]
    pub key: Option<String>,
    /// Field path (`lines[1].quantity`, `meta.correlation_id`) → expected value.
    #[serde(default)]
    pub fields: BTreeMap<String, toml::Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectDeadLetter {
    pub code: String,
    #[serde(default)]
    pub class: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectParked {
    pub reference: String,
    #[serde(default)]
    pub reason: Option<String>,
}

/// The outcome of one case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub file: String,
    pub name: String,
    pub passed: bool,
    pub failures: Vec<String>,
}

/// What a case produced, decoded.
#[derive(Debug, Clone, Serialize)]
pub struct Produced {
    pub outputs: Vec<(String, Option<String>, serde_json::Value)>,
    pub dead_letters: Vec<(String, String, String)>,
    pub parked: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    #[error("{path}: {message}")]
    Case { path: String, message: String },
}

/// Case files under `paths` (files, or folders searched for `*.toml`), sorted.
pub fn case_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ContractError> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let entries = std::fs::read_dir(p).map_err(|e| ContractError::Case {
                path: p.display().to_string(),
                message: e.to_string(),
            })?;
            for e in entries.flatten() {
                let path = e.path();
                if path.extension().is_some_and(|x| x == "toml") {
                    out.push(path);
                }
            }
        } else {
            out.push(p.clone());
        }
    }
    out.sort();
    Ok(out)
}

pub fn load_case(path: &Path) -> Result<Case, ContractError> {
    let err = |message: String| ContractError::Case {
        path: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    toml::from_str(&text).map_err(|e| err(e.to_string()))
}

/// Runs one case in memory through the worker's pipeline.
pub async fn run_case(t: &Topology, catalog: &Catalog, case: &Case, case_dir: &Path) -> Result<Produced, String> {
    let w = t
        .workers
        .iter()
        .find(|w| w.name == case.worker)
        .ok_or_else(|| format!("no worker `{}` in the topology", case.worker))?;
    let mut table = XrefTable::default();
    for e in &case.master_data {
        let value = serde_json::to_vec(e).map_err(|e| e.to_string())?;
        table.apply(&e.reference(), Some(&value)).map_err(|e| e.to_string())?;
    }
    let metrics = Arc::new(Metrics::new().map_err(|e| e.to_string())?);
    let codec = Arc::new(Codec::offline());
    let mut pipeline = Pipeline::new(
        t,
        w,
        catalog,
        codec.clone(),
        metrics,
        crate::runtime::pipeline::Sources {
            xref: Xref::fixed(table),
            enricher: None,
        },
        1,
    )
    .map_err(|e| e.to_string())?;
    let mut outbox = Outbox::memory();
    let mut pending = Pending::default();
    let now = chrono::Utc::now().timestamp_millis();
    for (offset, input) in case.inputs.iter().enumerate() {
        let (value, mut headers) = input_value(input, case_dir, &case.run)?;
        headers.extend(input.headers.iter().map(|(k, v)| (k.clone(), v.clone().into_bytes())));
        let mut h = OwnedHeaders::new();
        for (k, v) in &headers {
            h = h.insert(Header { key: k, value: Some(v) });
        }
        let topic = input.topic.clone().unwrap_or_else(|| w.inputs[0].clone());
        let message = OwnedMessage::new(
            Some(value),
            input.key.as_ref().map(|k| k.replace("{{RUN}}", &case.run).into_bytes()),
            topic,
            Timestamp::CreateTime(now),
            0,
            offset as i64,
            Some(h),
        );
        pipeline
            .process(&message, now, false, None, &mut outbox, &mut pending)
            .await
            .map_err(|e| format!("input {offset}: would be retried, not a mapping result: {e:?}"))?;
    }
    pipeline.apply(pending);
    decode(t, catalog, &codec, &outbox.captured).await
}

fn input_value(input: &Input, case_dir: &Path, run: &str) -> Result<(Vec<u8>, crate::runtime::dlq::Headers), String> {
    match (&input.json, &input.file) {
        (Some(json), None) => Ok((json.replace("{{RUN}}", run).into_bytes(), vec![])),
        (None, Some(file)) => {
            let in_case_dir = case_dir.join(file);
            let path = if in_case_dir.exists() {
                in_case_dir
            } else {
                PathBuf::from(file)
            };
            let r = crate::samples::load(&path, run).map_err(|e| e.to_string())?;
            Ok((r.value, r.headers))
        }
        _ => Err("an input needs exactly one of `json` or `file`".into()),
    }
}

async fn decode(t: &Topology, catalog: &Catalog, codec: &Codec, captured: &[Captured]) -> Result<Produced, String> {
    let header = |c: &Captured, name: &str| -> String {
        c.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default()
    };
    let mut produced = Produced {
        outputs: vec![],
        dead_letters: vec![],
        parked: vec![],
    };
    for c in captured {
        if c.topic == t.defaults.dead_letter_topic {
            produced.dead_letters.push((
                header(c, header::ERROR_CODE),
                header(c, header::ERROR_CLASS),
                header(c, header::ERROR_MESSAGE),
            ));
        } else if c.topic == t.defaults.parked_topic {
            produced
                .parked
                .push((header(c, header::PARK_REF), header(c, header::PARK_REASON)));
        } else if c.topic.starts_with("syncline.state.") {
            continue;
        } else if c.topic == t.defaults.xref_topic {
            // Cross-reference writes (a governed account's state) are JSON.
            let value = serde_json::from_slice(c.payload.as_deref().unwrap_or_default()).map_err(|e| e.to_string())?;
            let key = c.key.as_ref().map(|k| String::from_utf8_lossy(k).into_owned());
            produced.outputs.push((c.topic.clone(), key, value));
        } else {
            let schema = t
                .workers
                .iter()
                .flat_map(|w| w.outputs.iter())
                .find(|o| o.topics().any(|x| x == c.topic))
                .and_then(|o| catalog.latest(&o.schema).ok())
                .ok_or_else(|| format!("no schema for output topic {}", c.topic))?;
            let value = codec
                .decode_value(c.payload.as_deref().unwrap_or_default(), Some(&schema.schema))
                .await
                .map_err(|e| e.to_string())?;
            let key = c.key.as_ref().map(|k| String::from_utf8_lossy(k).into_owned());
            produced
                .outputs
                .push((c.topic.clone(), key, render::to_json(&value, &schema.schema)));
        }
    }
    Ok(produced)
}

/// Compares what a case produced with what it expects; each difference is one readable line.
pub fn check(case: &Case, produced: &Produced) -> Vec<String> {
    let mut failures = Vec::new();
    let e = &case.expect;
    if produced.outputs.len() != e.outputs.len() {
        failures.push(format!(
            "expected {} output(s), got {}: {}",
            e.outputs.len(),
            produced.outputs.len(),
            produced
                .outputs
                .iter()
                .map(|(t, _, _)| t.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for (i, (want, got)) in e.outputs.iter().zip(&produced.outputs).enumerate() {
        let (topic, key, value) = got;
        if *topic != want.topic {
            failures.push(format!("output[{i}]: expected topic {}, got {topic}", want.topic));
        }
        if let Some(k) = &want.key
            && Some(&k.replace("{{RUN}}", &case.run)) != key.as_ref()
        {
            failures.push(format!(
                "output[{i}] key: expected {k}, got {}",
                key.as_deref().unwrap_or("-")
            ));
        }
        for (path, expected) in &want.fields {
            let actual = lookup(value, path);
            let expected_text = scalar_text(expected).replace("{{RUN}}", &case.run);
            let actual_text = actual.map(json_text).unwrap_or_else(|| "<missing>".into());
            if expected_text != actual_text {
                failures.push(format!(
                    "output[{i}] {topic} field `{path}`: expected {expected_text}, got {actual_text}"
                ));
            }
        }
    }
    let got_codes: Vec<&str> = produced.dead_letters.iter().map(|(c, _, _)| c.as_str()).collect();
    let want_codes: Vec<&str> = e.dead_letters.iter().map(|d| d.code.as_str()).collect();
    if got_codes != want_codes {
        failures.push(format!(
            "dead letters: expected [{}], got [{}]{}",
            want_codes.join(", "),
            got_codes.join(", "),
            produced
                .dead_letters
                .first()
                .map(|(_, _, m)| format!(" (first: {m})"))
                .unwrap_or_default()
        ));
    }
    for (want, (_, class, _)) in e.dead_letters.iter().zip(&produced.dead_letters) {
        if let Some(c) = &want.class
            && c != class
        {
            failures.push(format!("dead letter {}: expected class {c}, got {class}", want.code));
        }
    }
    let got_refs: Vec<String> = produced.parked.iter().map(|(r, _)| r.clone()).collect();
    let want_refs: Vec<String> = e
        .parked
        .iter()
        .map(|p| p.reference.replace("{{RUN}}", &case.run))
        .collect();
    if got_refs != want_refs {
        failures.push(format!(
            "parked: expected [{}], got [{}]",
            want_refs.join(", "),
            got_refs.join(", ")
        ));
    }
    for (want, (_, reason)) in e.parked.iter().zip(&produced.parked) {
        if let Some(r) = &want.reason
            && r != reason
        {
            failures.push(format!("parked {}: expected reason {r}, got {reason}", want.reference));
        }
    }
    failures
}

/// `a.b[2].c` in a JSON value.
fn lookup<'a>(v: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    let mut cur = v;
    for part in path.split('.') {
        let (name, index) = match part.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        if !name.is_empty() {
            cur = cur.get(name)?;
        }
        if let Some(i) = index {
            cur = cur.get(i)?;
        }
    }
    Some(cur)
}

fn json_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "null".into(),
        other => other.to_string(),
    }
}

fn scalar_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Runs every case file and reports each.
pub async fn run_files(t: &Topology, catalog: &Catalog, files: &[PathBuf]) -> Vec<CaseResult> {
    let mut results = Vec::new();
    for file in files {
        let display = file.display().to_string();
        let case = match load_case(file) {
            Ok(c) => c,
            Err(e) => {
                results.push(CaseResult {
                    file: display,
                    name: "<unreadable>".into(),
                    passed: false,
                    failures: vec![e.to_string()],
                });
                continue;
            }
        };
        let dir = file.parent().unwrap_or(Path::new("."));
        let failures = match run_case(t, catalog, &case, dir).await {
            Ok(produced) => check(&case, &produced),
            Err(e) => vec![e],
        };
        results.push(CaseResult {
            file: display,
            name: case.name.clone(),
            passed: failures.is_empty(),
            failures,
        });
    }
    results
}
