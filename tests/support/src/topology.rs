//! Test topologies: a one-worker topology, the shipped one made private to a run (its topics
//! and worker names suffixed), and a topology written to a file for `syncline` processes.

use std::path::PathBuf;

use syncline::config::Topology;
use syncline::kafka::clients::{self};
use syncline::schema::Catalog;

use crate::*;

/// A path inside the repository (this crate lives at `tests/support`).
pub fn repo_path(rel: &str) -> PathBuf {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors().nth(2).unwrap_or(here).join(rel)
}

/// Topic names of one test's private topology.
#[derive(Clone, Debug)]
pub struct Names {
    pub input: String,
    pub output: String,
    pub dlq: String,
    pub parked: String,
    pub xref: String,
    pub worker: String,
}

impl Names {
    pub fn new(prefix: &str) -> Self {
        let base = unique(prefix);
        Names {
            input: format!("{base}.in"),
            output: format!("{base}.status"),
            dlq: format!("{base}.dlq"),
            parked: format!("{base}.parked"),
            xref: format!("{base}.xref"),
            worker: base.replace('.', "-"),
        }
    }

    /// A topology with one order-status worker over generic ERP events. Short session timeouts
    /// so a killed instance's partitions move on quickly.
    pub fn topology(&self, max_records: usize) -> String {
        format!(
            r#"
[kafka]
bootstrap_servers = "{bootstrap}"
[kafka.properties]
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "1000"
[registry]
url = "{registry}"
[metrics]
listen = "127.0.0.1:0"
[defaults]
dead_letter_topic = "{dlq}"
parked_topic = "{parked}"
xref_topic = "{xref}"
batch = {{ max_records = {max_records}, max_wait = "50ms" }}
retry = {{ initial_backoff = "100ms", max_backoff = "2s" }}
[[worker]]
name = "{worker}"
inputs = ["{input}"]
adapter = "generic_erp"
transform = "erp_order_events"
[[worker.output]]
name = "order_status"
topic = "{output}"
schema = "order_status"
"#,
            bootstrap = kafka().bootstrap_servers,
            registry = registry().url,
            dlq = self.dlq,
            parked = self.parked,
            xref = self.xref,
            worker = self.worker,
            input = self.input,
            output = self.output,
        )
    }

    pub async fn create_topics(&self, partitions: i32) {
        topics(
            &[&self.input, &self.output, &self.dlq, &self.parked, &self.xref],
            partitions,
        )
        .await;
    }
}

pub fn parse_topology(text: &str) -> Topology {
    syncline::config::parse(
        text,
        &syncline::config::env::ProcessEnv,
        &Catalog::record_names(&repo_path("schemas")),
    )
    .unwrap_or_else(|p| panic!("test topology invalid: {p:?}"))
}

/// The shipped topology's text with every topic and worker name made private to one test run
/// (and short timeouts, and a metrics port the OS picks).
pub fn shipped_topology_text_private(suffix: &str) -> String {
    let mut text = std::fs::read_to_string(repo_path("topology.toml")).unwrap();
    let t = parse_topology(&text);
    let mut topics: Vec<String> = vec![
        t.defaults.dead_letter_topic.clone(),
        t.defaults.parked_topic.clone(),
        t.tracker.changelog_topic.clone(),
    ];
    for w in &t.workers {
        topics.extend(w.inputs.iter().cloned());
        topics.extend(w.outputs.iter().flat_map(|o| o.topics().map(str::to_string)));
        text = text.replace(
            &format!("name = \"{}\"", w.name),
            &format!("name = \"{}-{}\"", w.name, suffix.replace('.', "-")),
        );
    }
    topics.sort();
    topics.dedup();
    for topic in topics {
        text = text.replace(&format!("\"{topic}\""), &format!("\"{topic}.{suffix}\""));
    }
    text = text.replacen(
        "[defaults]\n",
        &format!("[defaults]\nxref_topic = \"mdm.xref.{suffix}\"\n"),
        1,
    );
    text = text.replacen(
        "[kafka.properties]\n",
        "[kafka.properties]\n\"session.timeout.ms\" = \"6000\"\n\"heartbeat.interval.ms\" = \"1000\"\n",
        1,
    );
    text = text
        .replace("max_wait = \"100ms\"", "max_wait = \"50ms\"")
        .replace("127.0.0.1:9464", "127.0.0.1:0");
    text
}

/// The same, parsed.
pub fn shipped_topology_private(suffix: &str) -> Topology {
    parse_topology(&shipped_topology_text_private(suffix))
}

/// The name a shipped topic has in a private topology.
pub fn private(topic: &str, suffix: &str) -> String {
    format!("{topic}.{suffix}")
}

/// `workers` and the status gates their status outputs go through (a worker whose order
/// status reaches Salesforce only through the gate is started with it).
pub fn with_gates(t: &Topology, mut workers: Vec<String>) -> Vec<String> {
    let outputs: Vec<String> = t
        .workers
        .iter()
        .filter(|w| workers.contains(&w.name))
        .flat_map(|w| w.outputs.iter().flat_map(|o| o.topics().map(str::to_string)))
        .collect();
    for gate in t.workers.iter().filter(|w| w.transform == "status_gate") {
        if gate.inputs.iter().any(|i| outputs.contains(i)) && !workers.contains(&gate.name) {
            workers.push(gate.name.clone());
        }
    }
    workers
}

/// A private topology written to a file (for `syncline` processes), its topics created.
pub struct TopologyFile {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
    pub topology: Topology,
}

impl TopologyFile {
    pub async fn create(text: &str) -> TopologyFile {
        let topology = parse_topology(text);
        clients::ensure_topics(&kafka(), &clients::topology_topics(&topology, 3))
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("topology.toml");
        std::fs::write(&path, text).unwrap();
        TopologyFile {
            _dir: dir,
            path,
            topology,
        }
    }
}
