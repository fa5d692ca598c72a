//! The shape of `topology.toml`, as serde reads it.
//!
//! Owns: field names, defaults and `deny_unknown_fields`. Must not: check cross-field rules
//! (that is `validate`), read the environment (that is `env`), or connect to anything.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;

/// The whole topology file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    pub kafka: KafkaConfig,
    pub registry: RegistryConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub defaults: Defaults,
    #[serde(default)]
    pub tracker: TrackerConfig,
    #[serde(default, rename = "worker")]
    pub workers: Vec<WorkerConfig>,
    /// Vendor API connections by name (`[api.s4]`), for completing thin events.
    #[serde(default)]
    pub api: std::collections::BTreeMap<String, ApiConfig>,
}

impl Topology {
    /// Every `(topic, schema record)` the workers write with a schema, deduplicated: the
    /// registry subjects `<topic>-value` the topology needs.
    pub fn output_subjects(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .workers
            .iter()
            .flat_map(|w| w.outputs.iter())
            .flat_map(|o| o.topics().map(move |t| (t.to_string(), o.schema.clone())))
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// The business transaction tracker: order lifecycles and their service levels.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackerConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Compacted topic holding every order's timeline.
    #[serde(default = "default_tracker_topic")]
    pub changelog_topic: String,
    /// `"FROM->TO" = "duration"`: an order in FROM longer than that is stuck.
    #[serde(default = "default_service_levels", deserialize_with = "crate::duration::settings")]
    pub service_levels: BTreeMap<String, Duration>,
}

fn default_tracker_topic() -> String {
    "syncline.state.tracker".into()
}

fn default_service_levels() -> BTreeMap<String, Duration> {
    const DAY: u64 = 24 * 3600;
    [
        ("SUBMITTED->ACCEPTED", DAY / 24),
        ("CREDIT_HOLD->ACCEPTED", DAY),
        ("ACCEPTED->SHIPPED", 3 * DAY),
        ("SHIPPED->INVOICED", 2 * DAY),
        ("INVOICED->PAID", 45 * DAY),
    ]
    .into_iter()
    .map(|(k, secs)| (k.to_string(), Duration::from_secs(secs)))
    .collect()
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            changelog_topic: default_tracker_topic(),
            service_levels: default_service_levels(),
        }
    }
}

/// Kafka connection. `properties` go to librdkafka unchanged (SASL, SSL, timeouts ...).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    pub bootstrap_servers: String,
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

pub use crate::api::{ApiAuth, ApiConfig};
pub use crate::schema::registry::RegistryConfig;

/// Metrics and health HTTP endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Loopback by default: metrics reveal business volumes.
    #[serde(default = "default_metrics_listen")]
    pub listen: String,
}

fn default_metrics_listen() -> String {
    "127.0.0.1:9464".into()
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            listen: default_metrics_listen(),
        }
    }
}

/// Values every worker inherits unless it sets its own.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    #[serde(default = "default_dlq_topic")]
    pub dead_letter_topic: String,
    #[serde(default = "default_parked_topic")]
    pub parked_topic: String,
    /// Compacted master-data cross-reference topic, read in full by every instance.
    #[serde(default = "default_xref_topic")]
    pub xref_topic: String,
    #[serde(default)]
    pub batch: BatchConfig,
    #[serde(default)]
    pub retry: RetryConfig,
    #[serde(default)]
    pub dedupe: DedupeConfig,
}

fn default_dlq_topic() -> String {
    "syncline.dlq".into()
}
fn default_parked_topic() -> String {
    "syncline.parked".into()
}
fn default_xref_topic() -> String {
    "mdm.xref".into()
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            dead_letter_topic: default_dlq_topic(),
            parked_topic: default_parked_topic(),
            xref_topic: default_xref_topic(),
            batch: BatchConfig::default(),
            retry: RetryConfig::default(),
            dedupe: DedupeConfig::default(),
        }
    }
}

/// When a transaction closes: whichever limit is reached first.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    #[serde(default = "default_batch_records")]
    pub max_records: usize,
    #[serde(default = "default_batch_wait", deserialize_with = "crate::duration::setting")]
    pub max_wait: Duration,
}

/// Under load a transaction closes at this many records. Each transaction costs the broker a
/// fixed amount of work (partition registration, markers, the offset commit) on top of its
/// records: at 500 records that fixed part was most of the broker's CPU per record, at 1000 the
/// broker needs ~30% less per record. Below ~10k events/s `max_wait` closes the batch first,
/// so latency there is unchanged (see BENCHMARKS.md).
fn default_batch_records() -> usize {
    1000
}
fn default_batch_wait() -> Duration {
    Duration::from_millis(100)
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_records: default_batch_records(),
            max_wait: default_batch_wait(),
        }
    }
}

/// Retry of transient failures (broker, registry, timeouts), in place, with backoff.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    #[serde(default = "default_initial_backoff", deserialize_with = "crate::duration::setting")]
    pub initial_backoff: Duration,
    #[serde(default = "default_max_backoff", deserialize_with = "crate::duration::setting")]
    pub max_backoff: Duration,
    /// 0 means retry forever (back-pressure, never drop).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
}

fn default_initial_backoff() -> Duration {
    Duration::from_millis(200)
}
fn default_max_backoff() -> Duration {
    Duration::from_secs(30)
}
fn default_max_attempts() -> u32 {
    0
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            initial_backoff: default_initial_backoff(),
            max_backoff: default_max_backoff(),
            max_attempts: default_max_attempts(),
        }
    }
}

/// Bounds of the per-worker idempotency store.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DedupeConfig {
    #[serde(default = "default_dedupe_ttl", deserialize_with = "crate::duration::setting")]
    pub ttl: Duration,
    #[serde(default = "default_dedupe_entries")]
    pub max_entries: usize,
}

fn default_dedupe_ttl() -> Duration {
    Duration::from_secs(7 * 24 * 3600)
}
fn default_dedupe_entries() -> usize {
    1_000_000
}

impl Default for DedupeConfig {
    fn default() -> Self {
        Self {
            ttl: default_dedupe_ttl(),
            max_entries: default_dedupe_entries(),
        }
    }
}

/// One `[[worker]]`: a consumer group member with its own transactional producer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    pub name: String,
    pub inputs: Vec<String>,
    /// Which source shapes to accept: `salesforce`, `sap_s4`, `d365_fo`, `generic_erp`, `canonical`.
    pub adapter: String,
    /// Name of a transform in `transforms::REGISTRY`.
    pub transform: String,
    #[serde(default, rename = "output")]
    pub outputs: Vec<OutputConfig>,
    /// Hold later events of a key behind its dead letter (docs/architecture.md, "Worker and batch cycle").
    #[serde(default = "yes")]
    pub sequenced_dead_letters: bool,
    #[serde(default)]
    pub batch: Option<BatchConfig>,
    #[serde(default)]
    pub retry: Option<RetryConfig>,
    #[serde(default)]
    pub dedupe: Option<DedupeConfig>,
    /// Records processed concurrently within a batch (different keys only).
    #[serde(default = "one")]
    pub concurrency: usize,
    /// Complete thin ERP events through a vendor API (`[worker.enrich]`).
    #[serde(default)]
    pub enrich: Option<EnrichConfig>,
    /// ERP event ids the profile does not know, by the kind they are (`[worker.event_types]`,
    /// e.g. the ids a Dynamics 365 business event catalog lists): `"<id>" = "order_accepted"`.
    #[serde(default)]
    pub event_types: std::collections::BTreeMap<String, String>,
    /// Customer governance rules (`[worker.governance]`, transform `account_governance`).
    #[serde(default)]
    pub governance: Option<crate::transforms::governance::Rules>,
}

/// How a worker completes thin events: the connection its profile's lookups call, and how long a
/// document the API does not know yet is waited for.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrichConfig {
    /// The `[api.<name>]` connection.
    pub api: String,
    /// A record whose document the API still does not find this long after the event is
    /// dead-lettered `ENRICHMENT_NOT_FOUND`.
    #[serde(default = "default_not_found_for", deserialize_with = "crate::duration::setting")]
    pub not_found_for: Duration,
    /// How often records parked for a document not found yet are tried again.
    #[serde(default = "default_retry_every", deserialize_with = "crate::duration::setting")]
    pub retry_every: Duration,
}

fn default_not_found_for() -> Duration {
    Duration::from_secs(15 * 60)
}
fn default_retry_every() -> Duration {
    Duration::from_secs(30)
}

fn yes() -> bool {
    true
}

fn one() -> usize {
    1
}

/// One output stream of a worker: a topic (or a routing table of topics) and its schema.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// Logical name the transform emits to, e.g. `sales_order`, `order_status`.
    pub name: String,
    /// Target topic; with `routes`, the topic for records no route claims is an error instead.
    #[serde(default)]
    pub topic: Option<String>,
    /// Schema folder under `schemas/`, e.g. `order_status`.
    pub schema: String,
    /// Record field whose value picks the topic, e.g. `legal_entity`.
    #[serde(default)]
    pub route_by: Option<String>,
    /// Value of `route_by` → topic.
    #[serde(default)]
    pub routes: BTreeMap<String, String>,
}

impl OutputConfig {
    /// Every topic this output can write to.
    pub fn topics(&self) -> impl Iterator<Item = &str> {
        self.topic
            .as_deref()
            .into_iter()
            .chain(self.routes.values().map(String::as_str))
    }
}

const SECRET_HINTS: [&str; 4] = ["password", "secret", "jaas", "key"];

fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SECRET_HINTS.iter().any(|h| key.contains(h))
}

// Debug by hand: secrets must never reach a log line, even at debug level.
impl fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let props: BTreeMap<&str, &str> = self
            .properties
            .iter()
            .map(|(k, v)| {
                let shown = if is_secret_key(k) { "***" } else { v.as_str() };
                (k.as_str(), shown)
            })
            .collect();
        f.debug_struct("KafkaConfig")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("properties", &props)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_secrets() {
        let kafka = KafkaConfig {
            bootstrap_servers: "b:9092".into(),
            properties: BTreeMap::from([
                ("sasl.password".to_string(), "hunter2".to_string()),
                ("security.protocol".to_string(), "SASL_SSL".to_string()),
            ]),
        };
        let shown = format!("{kafka:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("SASL_SSL"));
        let registry = RegistryConfig {
            url: "http://r".into(),
            username: Some("u".into()),
            password: Some("hunter2".into()),
            timeout: Duration::from_secs(5),
        };
        assert!(!format!("{registry:?}").contains("hunter2"));
    }
}
