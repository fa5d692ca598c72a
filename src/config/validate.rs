//! Cross-field rules of a parsed topology: names, references, ranges, addresses (durations are parsed by serde, see `crate::duration`).
//!
//! Owns: every rule that serde cannot express, each reported as a [`Problem`] that names the key
//! and what would be valid. Must not: stop at the first problem, or touch the network.
//!
//! Why this file is ~410 lines: it is one list of rules over one topology, each a few lines
//! that push a problem; grouped by section (kafka, registry, workers, apis) they read top down.

use std::collections::HashSet;
use std::net::SocketAddr;

use super::{BatchConfig, DedupeConfig, Problem, RetryConfig, Topology};

/// Most records one transaction may batch; see `batch` below.
const MAX_BATCH_RECORDS: usize = 10_000;

pub fn validate(t: &Topology, known_schemas: &[String]) -> Vec<Problem> {
    let mut v = Validator::default();
    v.kafka(t);
    v.registry(t);
    if t.metrics.listen.parse::<SocketAddr>().is_err() {
        v.push(
            "metrics.listen",
            format!("`{}` is not an address; write e.g. `127.0.0.1:9464`", t.metrics.listen),
        );
    }
    v.topic("defaults.dead_letter_topic", &t.defaults.dead_letter_topic);
    v.topic("defaults.parked_topic", &t.defaults.parked_topic);
    v.topic("defaults.xref_topic", &t.defaults.xref_topic);
    v.batch("defaults.batch", &t.defaults.batch);
    v.retry("defaults.retry", &t.defaults.retry);
    v.dedupe("defaults.dedupe", &t.defaults.dedupe);
    v.workers(t, known_schemas);
    v.apis(t);
    v.topic("tracker.changelog_topic", &t.tracker.changelog_topic);
    for transition in t.tracker.service_levels.keys() {
        let key = format!("tracker.service_levels.\"{transition}\"");
        if crate::schema::lifecycle::parse_transition(transition).is_none() {
            v.push(
                key.clone(),
                format!(
                    "`{transition}` is not FROM->TO of order states; states: {}",
                    crate::schema::lifecycle::STATES.join(", ")
                ),
            );
        }
    }
    v.problems
}

#[derive(Default)]
struct Validator {
    problems: Vec<Problem>,
}

impl Validator {
    fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            key: key.into(),
            message: message.into(),
        });
    }

    fn kafka(&mut self, t: &Topology) {
        let servers = &t.kafka.bootstrap_servers;
        let bad = servers.trim().is_empty()
            || servers.split(',').any(|s| {
                s.trim()
                    .rsplit_once(':')
                    .is_none_or(|(_, port)| port.parse::<u16>().is_err())
            });
        if bad {
            self.push(
                "kafka.bootstrap_servers",
                format!("`{servers}` is not a list of host:port; write e.g. `127.0.0.1:9092`"),
            );
        }
        for key in [
            "bootstrap.servers",
            "transactional.id",
            "group.id",
            "isolation.level",
            "enable.auto.commit",
        ] {
            if t.kafka.properties.contains_key(key) {
                self.push(
                    format!("kafka.properties.{key}"),
                    "syncline sets this itself per worker for exactly-once; remove it",
                );
            }
        }
    }

    fn registry(&mut self, t: &Topology) {
        let url = &t.registry.url;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            self.push(
                "registry.url",
                format!("`{url}` is not an http(s) URL; write e.g. `http://127.0.0.1:8081/apis/ccompat/v7`"),
            );
        }
        if t.registry.password.is_some() && t.registry.username.is_none() {
            self.push(
                "registry.username",
                "a password is set without a username; set both or neither",
            );
        }
    }

    fn apis(&mut self, t: &Topology) {
        for (name, a) in &t.api {
            let at = format!("api.{name}");
            self.url(&format!("{at}.base_url"), &a.base_url);
            match &a.auth {
                super::ApiAuth::Oauth2ClientCredentials { token_url, .. } => {
                    self.url(&format!("{at}.auth.token_url"), token_url);
                }
                super::ApiAuth::SalesforceJwtBearer {
                    token_url, private_key, ..
                } => {
                    self.url(&format!("{at}.auth.token_url"), token_url);
                    if jsonwebtoken::EncodingKey::from_rsa_pem(private_key.as_bytes()).is_err() {
                        self.push(
                            format!("{at}.auth.private_key"),
                            "not an RSA private key in PEM (-----BEGIN PRIVATE KEY----- or -----BEGIN RSA PRIVATE KEY-----); export the key of the connected app's certificate",
                        );
                    }
                }
                super::ApiAuth::Basic { .. } => {}
            }
            if a.max_concurrent == 0 {
                self.push(
                    format!("{at}.max_concurrent"),
                    "must be at least 1 (requests in flight at once)",
                );
            }
        }
    }

    fn url(&mut self, key: &str, text: &str) {
        if !(text.starts_with("https://") || text.starts_with("http://")) {
            self.push(
                key.to_string(),
                format!("`{text}` is not an http(s) URL; write e.g. `https://my-s4.example.com/sap/opu/odata/sap`"),
            );
        }
    }

    fn topic(&mut self, key: &str, name: &str) {
        let valid = !name.is_empty()
            && name.len() <= 249
            && name != "."
            && name != ".."
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !valid {
            self.push(
                key,
                format!("`{name}` is not a Kafka topic name; use 1-249 of [a-zA-Z0-9._-]"),
            );
        }
    }

    fn batch(&mut self, key: &str, b: &BatchConfig) {
        if b.max_records == 0 {
            self.push(format!("{key}.max_records"), "must be at least 1");
        }
        // A transaction's state record holds an entry per record (57 bytes with its ledger
        // entry) and must stay under Kafka's 1 MB message limit.
        if b.max_records > MAX_BATCH_RECORDS {
            self.push(
                format!("{key}.max_records"),
                format!("must be at most {MAX_BATCH_RECORDS} (one transaction's state record must stay under Kafka's 1 MB message limit); raise max_wait instead"),
            );
        }
    }

    fn retry(&mut self, key: &str, r: &RetryConfig) {
        if r.initial_backoff > r.max_backoff {
            self.push(
                format!("{key}.initial_backoff"),
                format!(
                    "is longer than max_backoff ({})",
                    humantime::format_duration(r.max_backoff)
                ),
            );
        }
    }

    fn dedupe(&mut self, key: &str, d: &DedupeConfig) {
        if d.max_entries == 0 {
            self.push(format!("{key}.max_entries"), "must be at least 1");
        }
    }

    fn workers(&mut self, t: &Topology, known_schemas: &[String]) {
        let mut names = HashSet::new();
        for (i, w) in t.workers.iter().enumerate() {
            let at = format!("worker[{i}]");
            let name_ok = !w.name.is_empty()
                && w.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
            if !name_ok {
                self.push(
                    format!("{at}.name"),
                    format!("`{}` is not a worker name; use [a-zA-Z0-9_-]", w.name),
                );
            }
            if !names.insert(w.name.as_str()) {
                self.push(
                    format!("{at}.name"),
                    format!("duplicate worker name `{}`; names must be unique", w.name),
                );
            }
            if w.inputs.is_empty() {
                self.push(format!("{at}.inputs"), "lists no topic; give at least one");
            }
            for (j, input) in w.inputs.iter().enumerate() {
                self.topic(&format!("{at}.inputs[{j}]"), input);
            }
            if !crate::adapters::KINDS.contains(&w.adapter.as_str()) {
                self.push(
                    format!("{at}.adapter"),
                    format!(
                        "unknown adapter `{}`; valid: {}",
                        w.adapter,
                        crate::adapters::KINDS.join(", ")
                    ),
                );
            }
            self.transform(&at, w, known_schemas);
            if w.concurrency == 0 {
                self.push(format!("{at}.concurrency"), "must be at least 1");
            }
            if let Some(b) = &w.batch {
                self.batch(&format!("{at}.batch"), b);
            }
            if let Some(r) = &w.retry {
                self.retry(&format!("{at}.retry"), r);
            }
            if let Some(d) = &w.dedupe {
                self.dedupe(&format!("{at}.dedupe"), d);
            }
            if let Some(e) = &w.enrich {
                self.enrich(t, &format!("{at}.enrich"), &w.adapter, e);
            }
            self.event_types(&at, w);
            for (key, message) in super::governance::problems(t, &at, w) {
                self.push(key, message);
            }
        }
    }

    fn event_types(&mut self, at: &str, w: &super::WorkerConfig) {
        use crate::adapters::erp::{ErpEventKind, Profile};
        if w.event_types.is_empty() {
            return;
        }
        if Profile::by_name(&w.adapter).is_none() {
            self.push(
                format!("{at}.event_types"),
                format!(
                    "the `{}` adapter reads no ERP events; remove [worker.event_types]",
                    w.adapter
                ),
            );
            return;
        }
        for (id, kind) in &w.event_types {
            if ErpEventKind::from_name(kind).is_none() {
                let kinds: Vec<&str> = ErpEventKind::NAMES.iter().map(|(n, _)| *n).collect();
                self.push(
                    format!("{at}.event_types.\"{id}\""),
                    format!("`{kind}` is not an event kind; valid: {}", kinds.join(", ")),
                );
            }
        }
    }

    fn enrich(&mut self, t: &Topology, at: &str, adapter: &str, e: &super::EnrichConfig) {
        if !t.api.contains_key(&e.api) {
            let known: Vec<&str> = t.api.keys().map(String::as_str).collect();
            self.push(
                format!("{at}.api"),
                format!(
                    "no connection `[api.{}]`; defined: {}",
                    e.api,
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            );
        }
        match crate::adapters::erp::Profile::by_name(adapter) {
            Some(p) if !p.lookups.is_empty() => {}
            None if adapter == "salesforce" => {}
            _ => self.push(
                at.to_string(),
                format!("the `{adapter}` adapter has no lookups to complete events with; remove [worker.enrich]"),
            ),
        }
    }

    fn transform(&mut self, at: &str, w: &super::WorkerConfig, known_schemas: &[String]) {
        let Some(spec) = crate::transforms::spec(&w.transform) else {
            self.push(
                format!("{at}.transform"),
                format!(
                    "unknown transform `{}`; valid: {}",
                    w.transform,
                    crate::transforms::names().join(", ")
                ),
            );
            return;
        };
        if !spec.adapters.contains(&w.adapter.as_str()) && crate::adapters::KINDS.contains(&w.adapter.as_str()) {
            self.push(
                format!("{at}.adapter"),
                format!(
                    "transform `{}` cannot read `{}`; it reads: {}",
                    w.transform,
                    w.adapter,
                    spec.adapters.join(", ")
                ),
            );
        }
        if w.transform == "status_gate" && w.outputs.len() != 1 {
            self.push(
                format!("{at}.output"),
                "a status gate reads and writes one lifecycle's records: give it exactly one [[worker.output]]",
            );
        }
        for (k, out) in w.outputs.iter().enumerate() {
            if let Some(field) = &out.route_by
                && !crate::schema::canonical::CanonicalRecord::ROUTE_FIELDS.contains(&field.as_str())
            {
                self.push(
                    format!("{at}.output[{k}].route_by"),
                    format!(
                        "cannot route by `{field}`; valid: {}",
                        crate::schema::canonical::CanonicalRecord::ROUTE_FIELDS.join(", ")
                    ),
                );
            }
            let key = format!("{at}.output[{k}]");
            if !spec.outputs.contains(&out.name.as_str()) {
                self.push(
                    format!("{key}.name"),
                    format!(
                        "transform `{}` emits no output `{}`; it emits: {}",
                        w.transform,
                        out.name,
                        spec.outputs.join(", ")
                    ),
                );
            }
            if !known_schemas.iter().any(|s| s == &out.schema) {
                self.push(
                    format!("{key}.schema"),
                    format!("unknown schema `{}`; valid: {}", out.schema, known_schemas.join(", ")),
                );
            }
            match (&out.topic, out.routes.is_empty(), &out.route_by) {
                (None, true, _) => self.push(key.clone(), "has neither `topic` nor `routes`; give one"),
                (_, false, None) => self.push(
                    format!("{key}.route_by"),
                    "`routes` needs `route_by` (the field whose value picks the topic)",
                ),
                (_, true, Some(_)) => self.push(format!("{key}.routes"), "`route_by` is set but `routes` is empty"),
                _ => {}
            }
            if let Some(topic) = &out.topic {
                self.topic(&format!("{key}.topic"), topic);
            }
            for (value, topic) in &out.routes {
                self.topic(&format!("{key}.routes.{value}"), topic);
            }
        }
        // A gate emits the one lifecycle it is given; every other transform all its outputs.
        let gate = w.transform == "status_gate";
        for required in spec.outputs {
            if !gate && !w.outputs.iter().any(|o| o.name == *required) {
                self.push(
                    format!("{at}.output"),
                    format!(
                        "transform `{}` emits `{required}` but no [[worker.output]] is named so",
                        w.transform
                    ),
                );
            }
        }
    }
}
