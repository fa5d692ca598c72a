//! Workers in the test process, and a private copy of the shipped topology with helpers to
//! publish samples and read what the workers wrote.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::FutureProducer;
use syncline::config::Topology;
use syncline::runtime::supervisor::Health;
use syncline::schema::Catalog;
use syncline::telemetry::Metrics;

use crate::*;

/// A generic-profile ERP sales-order event (structured CloudEvent).
pub fn status_event(order: &str, seq: u32, kind: &str) -> Vec<u8> {
    serde_json::json!({
        "specversion": "1.0",
        "id": format!("evt-{order}-{seq}"),
        "source": "/erp/erp-na",
        "type": format!("io.syncline.erp.salesorder.{kind}"),
        "time": syncline::runtime::dlq::rfc3339(1_764_151_200_000 + i64::from(seq) * 1000),
        "data": { "salesforce_order_id": order, "erp_order_id": format!("50{seq:05}") }
    })
    .to_string()
    .into_bytes()
}

/// Workers running in this process, started the way `syncline run` starts them.
pub struct Running {
    pub metrics: Arc<Metrics>,
    pub health: Health,
    process: syncline::app::Process,
}

impl Running {
    pub async fn start(topology: &str, instance: &str) -> Running {
        Self::start_topology(parse_topology(topology), instance).await
    }

    pub async fn start_topology(t: Topology, instance: &str) -> Running {
        Self::start_workers(t, instance, &[]).await
    }

    /// Only the named workers (all when empty).
    pub async fn start_workers(t: Topology, instance: &str, workers: &[String]) -> Running {
        // Worker logs go to the test's output (shown when a test fails); RUST_LOG filters them.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,syncline=info")),
            )
            .with_test_writer()
            .try_init();
        let catalog = Arc::new(Catalog::load(&repo_path("schemas")).unwrap());
        let options = syncline::app::Options {
            workers: workers.to_vec(),
            instance: instance.to_string(),
            tracker: false,
            http: None,
        };
        let process = syncline::app::Process::start(t, catalog, options)
            .await
            .expect("process start");
        Running {
            metrics: process.metrics.clone(),
            health: process.health.clone(),
            process,
        }
    }

    pub async fn stop(self) {
        self.process.stop();
        let _ = tokio::time::timeout(Duration::from_secs(60), self.process.wait()).await;
    }

    pub fn counter(&self, c: &prometheus::IntCounterVec, labels: &[&str]) -> u64 {
        c.with_label_values(labels).get()
    }

    /// The counter once it reaches `expected` (or after 10 s, whatever it is then). A worker
    /// counts a batch just after its transaction commits, so a test that saw the committed
    /// offsets can still be a moment ahead of the counters.
    pub async fn counted(&self, c: &prometheus::IntCounterVec, labels: &[&str], expected: u64) -> u64 {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let now = self.counter(c, labels);
            if now >= expected || tokio::time::Instant::now() >= deadline {
                return now;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A JSON event with the time at `pointer` (e.g. `/time`) set to `at`: tests that judge event
/// times against the clock use times relative to the run, never the samples' fixed dates.
pub fn with_time(event: &[u8], pointer: &str, at: chrono::DateTime<chrono::Utc>) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(event).expect("a JSON event");
    *v.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("no {pointer} in the event")) =
        serde_json::Value::String(at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    serde_json::to_vec(&v).unwrap()
}

/// One test's private copy of the shipped topology (topics created), with helpers to publish
/// samples and read what the workers wrote.
pub struct Scenario {
    pub suffix: String,
    pub run: &'static str,
    pub topology: Topology,
    pub codec: syncline::schema::Codec,
    pub catalog: Catalog,
    pub producer: FutureProducer,
}

impl Scenario {
    pub async fn new(prefix: &str, run: &'static str) -> Scenario {
        let suffix = unique(prefix);
        let topology = shipped_topology_private(&suffix);
        syncline::kafka::clients::ensure_topics(&kafka(), &syncline::kafka::clients::topology_topics(&topology, 3))
            .await
            .unwrap();
        Scenario {
            codec: syncline::schema::Codec::new(syncline::schema::registry::sr_settings(&registry()).unwrap()),
            catalog: Catalog::load(&repo_path("schemas")).unwrap(),
            producer: producer(),
            suffix,
            run,
            topology,
        }
    }

    /// Starts the named workers of the shipped topology (their private names).
    pub async fn start(&self, workers: &[&str]) -> Running {
        let names = with_gates(&self.topology, workers.iter().map(|w| self.worker(w)).collect());
        Running::start_workers(self.topology.clone(), "a", &names).await
    }

    /// Waits until the named workers (shipped names) have committed to the end of their inputs:
    /// whatever they will write for what was published so far is visible.
    pub async fn settle(&self, workers: &[&str]) {
        for w in workers {
            let name = self.worker(w);
            let cfg = self
                .topology
                .workers
                .iter()
                .find(|c| c.name == name)
                .unwrap_or_else(|| panic!("no worker {name}"));
            let inputs: Vec<&str> = cfg.inputs.iter().map(String::as_str).collect();
            wait_consumed(&name, &inputs, Duration::from_secs(60)).await;
        }
    }

    /// The configuration of a shipped worker (by its shipped name), to change before `start`.
    pub fn worker_config(&mut self, name: &str) -> &mut syncline::config::WorkerConfig {
        let private = self.worker(name);
        self.topology
            .workers
            .iter_mut()
            .find(|w| w.name == private)
            .unwrap_or_else(|| panic!("no worker {name}"))
    }

    /// A worker's private name (metrics labels).
    pub fn worker(&self, name: &str) -> String {
        format!("{name}-{}", self.suffix.replace('.', "-"))
    }

    pub fn topic(&self, name: &str) -> String {
        private(name, &self.suffix)
    }

    pub async fn publish(&self, topic: &str, key: &str, sample: &str) {
        let r = syncline::samples::load(&repo_path(&format!("samples/{sample}")), self.run).unwrap();
        let headers: Vec<(&str, &str)> = r
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), std::str::from_utf8(v).unwrap()))
            .collect();
        produce_with_headers(&self.producer, &self.topic(topic), key, &r.value, &headers).await;
    }

    pub async fn publish_xref(&self, sample: &str) {
        for (k, v) in syncline::samples::xref_records(&repo_path(&format!("samples/{sample}")), self.run).unwrap() {
            produce(&self.producer, &self.topic("mdm.xref"), &k, &v).await;
        }
    }

    /// Waits for `n` committed records on a shipped topic.
    pub async fn wait(&self, topic: &str, n: usize) -> Vec<OwnedMessage> {
        let got = wait_for(&self.topic(topic), n, Duration::from_secs(60)).await;
        assert!(got.len() >= n, "{topic}: expected {n} records, got {}", got.len());
        got
    }

    pub async fn decode<T: syncline::schema::canonical::Canonical>(&self, m: &OwnedMessage) -> T {
        self.codec
            .decode(m.payload().unwrap(), self.catalog.latest(T::RECORD).unwrap())
            .await
            .unwrap()
    }
}
