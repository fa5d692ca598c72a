//! Shared set-up for integration tests: the real local stack (scripts/stack.sh), unique names.
//!
//! The broker and registry must be running (`make test` starts them). An unreachable stack makes
//! a test fail, never skip: a green run must mean the guarantees were checked for real.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rdkafka::message::{Header, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use syncline::config::{KafkaConfig, RegistryConfig, Topology};
use syncline::kafka::clients::{self, TopicSpec};
use syncline::runtime::supervisor::Health;
use syncline::schema::Catalog;
use syncline::telemetry::Metrics;

pub const TIMEOUT: Duration = Duration::from_secs(30);

pub fn kafka() -> KafkaConfig {
    KafkaConfig {
        bootstrap_servers: std::env::var("SYNCLINE_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".into()),
        properties: BTreeMap::new(),
    }
}

pub fn registry() -> RegistryConfig {
    RegistryConfig {
        url: std::env::var("SYNCLINE_REGISTRY_URL").unwrap_or_else(|_| "http://127.0.0.1:8081/apis/ccompat/v7".into()),
        username: None,
        password: None,
        timeout: "5s".into(),
    }
}

pub fn repo_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A name no other test run uses, so tests share one broker without interfering.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}.{}.{}.{}",
        std::process::id(),
        chrono::Utc::now().timestamp_millis() % 1_000_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Creates fresh topics and fails loudly if the broker is not there.
pub async fn topics(names: &[&str], partitions: i32) {
    let specs: Vec<TopicSpec> = names
        .iter()
        .map(|n| TopicSpec {
            name: n.to_string(),
            partitions,
            compacted: false,
            retention_ms: None,
        })
        .collect();
    clients::ensure_topics(&kafka(), &specs).await.unwrap_or_else(|e| {
        panic!(
            "the Kafka broker at {} must be running (make test starts it): {e}",
            kafka().bootstrap_servers
        )
    });
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

pub fn producer() -> FutureProducer {
    syncline::kafka::clients::plain_producer(&kafka()).expect("producer")
}

pub async fn produce(p: &FutureProducer, topic: &str, key: &str, payload: &[u8]) {
    p.send(FutureRecord::to(topic).key(key).payload(payload), TIMEOUT)
        .await
        .map_err(|(e, _)| e)
        .expect("produce");
}

pub async fn produce_with_headers(
    p: &FutureProducer,
    topic: &str,
    key: &str,
    payload: &[u8],
    headers: &[(&str, &str)],
) {
    let mut h = OwnedHeaders::new();
    for (k, v) in headers {
        h = h.insert(Header {
            key: k,
            value: Some(*v),
        });
    }
    p.send(FutureRecord::to(topic).key(key).payload(payload).headers(h), TIMEOUT)
        .await
        .map_err(|(e, _)| e)
        .expect("produce");
}

/// Every committed record of `topic` so far.
pub async fn read_all(topic: &str) -> Vec<OwnedMessage> {
    // A topic created a moment ago may have no partition leader yet.
    let mut attempts = 0;
    let ends = loop {
        match syncline::kafka::clients::end_offsets(&kafka(), &[topic], TIMEOUT).await {
            Ok(ends) => break ends,
            Err(e) if attempts < 20 => {
                attempts += 1;
                eprintln!("end offsets of {topic}: {e}; asking again");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => panic!("end offsets of {topic}: {e}"),
        }
    };
    let from = ends.keys().map(|k| (k.clone(), 0)).collect();
    syncline::kafka::clients::read_committed_since(&kafka(), &from, TIMEOUT)
        .await
        .expect("read")
}

pub fn header<'a>(m: &'a OwnedMessage, name: &str) -> Option<&'a str> {
    use rdkafka::message::Headers;
    m.headers()?
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .and_then(|v| std::str::from_utf8(v).ok())
}

/// Polls `topic` until it holds `n` committed records (or the deadline passes).
pub async fn wait_for(topic: &str, n: usize, within: Duration) -> Vec<OwnedMessage> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let all = read_all(topic).await;
        if all.len() >= n || tokio::time::Instant::now() >= deadline {
            return all;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Waits until worker `worker`'s consumer group has committed offsets at the end of every
/// partition of `inputs`: everything published there so far is processed, and (offsets commit in
/// the same transaction as outputs) every output of it is visible. The condition "nothing more
/// will come" waits on, instead of a fixed sleep.
pub async fn wait_consumed(worker: &str, inputs: &[&str], within: Duration) {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let ends = clients::end_offsets(&kafka(), inputs, TIMEOUT)
        .await
        .expect("end offsets");
    let consumer: BaseConsumer = clients::base(&kafka())
        .set("group.id", format!("syncline.{worker}"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("offsets consumer");
    let mut tpl = rdkafka::TopicPartitionList::new();
    for (topic, partition) in ends.keys() {
        tpl.add_partition(topic, *partition);
    }
    let deadline = tokio::time::Instant::now() + within;
    loop {
        // The group coordinator may refuse while the group rebalances: ask again.
        let committed = match consumer.committed_offsets(tpl.clone(), Duration::from_secs(10)) {
            Ok(c) => c,
            Err(e) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "committed offsets of {worker}: {e}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let mut behind = Vec::new();
        for ((topic, partition), end) in &ends {
            let at = committed
                .find_partition(topic, *partition)
                .and_then(|e| e.offset().to_raw())
                .filter(|o| *o >= 0) // nothing committed yet
                .unwrap_or(0);
            if at >= *end {
                continue;
            }
            // Records written in transactions end with a commit marker the consumer never
            // sees: only a record past the committed offset means the worker is behind.
            let from = [((topic.clone(), *partition), at)].into_iter().collect();
            let unread = clients::read_committed_since(&kafka(), &from, Duration::from_secs(5))
                .await
                .expect("records past the committed offset");
            if !unread.is_empty() {
                behind.push(format!("{topic}/{partition} (committed {at}, end {end})"));
            }
        }
        if behind.is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "worker {worker} did not commit to the end of {}",
            behind.join(", ")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
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

/// A JSON event with the time at `pointer` (e.g. `/time`) set to `at`: tests that judge event
/// times against the clock use times relative to the run, never the samples' fixed dates.
pub fn with_time(event: &[u8], pointer: &str, at: chrono::DateTime<chrono::Utc>) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(event).expect("a JSON event");
    *v.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("no {pointer} in the event")) =
        serde_json::Value::String(at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    serde_json::to_vec(&v).unwrap()
}

/// Starts `syncline run` as a child process; returns it and its metrics base URL (the endpoint
/// binds port 0 and the log line says where it ended up).
pub fn spawn_run(topology: &std::path::Path, instance: &str) -> (std::process::Child, String) {
    spawn_run_with(topology, instance, &[])
}

/// The same with extra `syncline run` arguments (e.g. `--worker NAME --no-tracker`).
pub fn spawn_run_with(topology: &std::path::Path, instance: &str, extra: &[&str]) -> (std::process::Child, String) {
    spawn_run_env(topology, instance, extra, &[])
}

/// The same with environment variables for the child (secrets a topology names as `${VAR}`).
pub fn spawn_run_env(
    topology: &std::path::Path,
    instance: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (std::process::Child, String) {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_syncline"))
        .args(["run", "--instance", instance])
        .args(extra)
        .arg("--topology")
        .arg(topology)
        .arg("--schemas")
        .arg(repo_path("schemas"))
        .envs(env.iter().copied())
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn syncline run");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(i) = line.find("http://") {
                let url: String = line[i..]
                    .chars()
                    .take_while(|c| !c.is_whitespace() && *c != ',')
                    .collect();
                let _ = tx.send(url.trim_end_matches("/metrics").to_string());
            }
        }
    });
    let base = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("metrics address in the log");
    (child, base)
}

/// `scripts/stack.sh ARGS`, which must succeed.
pub fn stack(args: &[&str]) {
    let status = std::process::Command::new(repo_path("scripts/stack.sh"))
        .args(args)
        .status()
        .expect("stack.sh");
    assert!(status.success(), "scripts/stack.sh {args:?} failed");
}

/// `scripts/stack.sh ARGS`: whether it succeeded and what it printed.
pub fn stack_output(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(repo_path("scripts/stack.sh"))
        .args(args)
        .output()
        .expect("stack.sh");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Starts the whole stack again when dropped, so a test that stopped part of the shared stack
/// leaves it running for the next test binary even when it fails half-way.
pub struct RestartStack;

impl Drop for RestartStack {
    fn drop(&mut self) {
        let _ = std::process::Command::new(repo_path("scripts/stack.sh"))
            .arg("start")
            .status();
    }
}

/// The pid of a stack process (`kafka`, `registry`) from the stack's pid file.
pub fn stack_pid(service: &str) -> u32 {
    let run = std::env::var("SYNCLINE_RUN_DIR").unwrap_or_else(|_| {
        let cache = std::env::var("SYNCLINE_CACHE")
            .unwrap_or_else(|_| format!("{}/.cache/syncline", std::env::var("HOME").unwrap_or_default()));
        format!("{cache}/run")
    });
    let text = std::fs::read_to_string(format!("{run}/{service}.pid")).expect("stack pid file");
    text.trim().parse().expect("a pid")
}

/// The local addresses (`ip:port`, IPv6 in the kernel's hex form decoded) that process `pid`
/// listens on over TCP, read from /proc.
pub fn listening_addresses(pid: u32) -> Vec<String> {
    let inodes: std::collections::HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("the process's fds")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    let mut out = Vec::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // local_address, state 0A = LISTEN, inode
            if cols.len() > 9 && cols[3] == "0A" && inodes.contains(cols[9]) {
                out.push(decode_proc_address(cols[1]));
            }
        }
    }
    out
}

/// `0100007F:1F90` -> `127.0.0.1:8080`; IPv6 (four little-endian words) -> `[v6]:port`.
fn decode_proc_address(hex: &str) -> String {
    let (addr, port) = hex.split_once(':').expect("addr:port");
    let port = u16::from_str_radix(port, 16).expect("port");
    let bytes: Vec<u8> = (0..addr.len())
        .step_by(8)
        .flat_map(|i| u32::from_str_radix(&addr[i..i + 8], 16).expect("hex").to_le_bytes())
        .collect();
    match bytes.len() {
        4 => format!(
            "{}:{port}",
            std::net::Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3])
        ),
        _ => {
            let octets: [u8; 16] = bytes.try_into().expect("16 bytes");
            let v6 = std::net::Ipv6Addr::from(octets);
            match v6.to_ipv4_mapped() {
                Some(v4) => format!("{v4}:{port}"),
                None => format!("[{v6}]:{port}"),
            }
        }
    }
}

/// Runs the `syncline` binary from the repository root with `--topology`, `--schemas` and
/// `args`; returns whether it succeeded and everything it printed.
pub fn syncline(topology: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_syncline"));
    cmd.current_dir(repo_path(""))
        .arg("--topology")
        .arg(topology)
        .arg("--schemas")
        .arg(repo_path("schemas"))
        .args(args)
        .env("RUST_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run syncline");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// How many committed outputs carry each idempotency key (exactly-once checks).
pub fn count_by_idempotency_key(out: &[OwnedMessage]) -> std::collections::HashMap<String, u32> {
    let mut per_key = std::collections::HashMap::new();
    for m in out {
        let key = header(m, syncline::runtime::dlq::header::OUTPUT_IDEMPOTENCY_KEY).expect("idempotency-key header");
        *per_key.entry(key.to_string()).or_default() += 1;
    }
    per_key
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

/// A child process killed when the test ends, whether it passed or not.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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
