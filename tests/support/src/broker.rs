//! The shared broker and registry as tests reach them: connection settings, unique names,
//! topics, producing, and reading back what is committed.
//!
//! An unreachable stack makes a test fail, never skip: a green run must mean the guarantees
//! were checked for real.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rdkafka::message::{Header, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use syncline::config::{KafkaConfig, RegistryConfig};
use syncline::kafka::clients::{self, TopicSpec};

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
        timeout: std::time::Duration::from_secs(5),
    }
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

/// How many committed outputs carry each idempotency key (exactly-once checks).
pub fn count_by_idempotency_key(out: &[OwnedMessage]) -> std::collections::HashMap<String, u32> {
    let mut per_key = std::collections::HashMap::new();
    for m in out {
        let key = header(m, syncline::runtime::dlq::header::OUTPUT_IDEMPOTENCY_KEY).expect("idempotency-key header");
        *per_key.entry(key.to_string()).or_default() += 1;
    }
    per_key
}
