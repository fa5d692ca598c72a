//! Kafka clients as syncline needs them: transactional producers, read-committed consumers, and
//! an admin client to create topics.
//!
//! Owns: the librdkafka settings exactly-once depends on, layered over the user's
//! `[kafka.properties]`. Must not: hold business logic or decide retries.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, Producer};
use rdkafka::types::RDKafkaErrorCode;

use crate::config::KafkaConfig;

/// The user's connection settings; syncline's own settings are layered on top.
pub fn base(cfg: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    for (k, v) in &cfg.properties {
        c.set(k, v);
    }
    c.set("bootstrap.servers", &cfg.bootstrap_servers);
    c
}

/// Runs a blocking librdkafka call (transactions, metadata) on the blocking pool, so a slow or
/// absent broker stalls only the caller, never the async threads that serve everything else.
pub async fn off_thread<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, KafkaError> + Send + 'static,
) -> Result<T, KafkaError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or(Err(KafkaError::Canceled))
}

/// A producer whose writes commit or abort together; fences older instances of the same id.
pub async fn transactional_producer(
    cfg: &KafkaConfig,
    transactional_id: &str,
    init_timeout: Duration,
) -> Result<FutureProducer, KafkaError> {
    let producer: FutureProducer = base(cfg)
        .set("transactional.id", transactional_id)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("compression.type", "lz4")
        .set("transaction.timeout.ms", "60000")
        .create()?;
    let p = producer.clone();
    off_thread(move || p.init_transactions(init_timeout)).await?;
    Ok(producer)
}

/// A plain (non-transactional, idempotent) producer, for tools that publish test input.
pub fn plain_producer(cfg: &KafkaConfig) -> Result<FutureProducer, KafkaError> {
    base(cfg)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()
}

/// A consumer that sees only committed records and never commits on its own.
/// With `instance`, static group membership: a restarted instance takes its partitions back at
/// once instead of waiting a session timeout for the group to notice the old one is gone.
pub fn read_committed_consumer<C: ConsumerContext + 'static>(
    cfg: &KafkaConfig,
    group: &str,
    instance: Option<&str>,
    context: C,
) -> Result<StreamConsumer<C>, KafkaError> {
    let mut c = base(cfg);
    if let Some(id) = instance {
        c.set("group.instance.id", id);
    }
    c.set("group.id", group)
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("statistics.interval.ms", "5000")
        .create_with_context(context)
}

/// Asks the cluster for its metadata, giving up after `within`. Operator commands call it first,
/// so an unreachable broker is reported at once and by name, not as the timeout of whatever
/// request came first.
pub async fn probe(cfg: &KafkaConfig, within: Duration) -> Result<(), KafkaError> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let cfg = cfg.clone();
    off_thread(move || {
        let consumer: BaseConsumer = base(&cfg).create()?;
        consumer.fetch_metadata(None, within).map(|_| ())
    })
    .await
}

/// A topic to create if missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    pub compacted: bool,
    /// `retention.ms`; None keeps the broker's default.
    pub retention_ms: Option<i64>,
}

/// Creates the topics that do not exist yet; returns the names it created.
pub async fn ensure_topics(cfg: &KafkaConfig, topics: &[TopicSpec]) -> Result<Vec<String>, KafkaError> {
    let admin: AdminClient<DefaultClientContext> = base(cfg).create()?;
    let retention: Vec<Option<String>> = topics.iter().map(|t| t.retention_ms.map(|r| r.to_string())).collect();
    let new: Vec<NewTopic> = topics
        .iter()
        .zip(&retention)
        .map(|(t, retention)| {
            let mut topic = NewTopic::new(&t.name, t.partitions, TopicReplication::Fixed(-1));
            if t.compacted {
                topic = topic.set("cleanup.policy", "compact");
            }
            if let Some(r) = retention {
                topic = topic.set("retention.ms", r);
            }
            topic
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let mut created = Vec::new();
    for result in admin.create_topics(new.iter(), &opts).await? {
        match result {
            Ok(name) => created.push(name),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(KafkaError::AdminOp(code)).inspect_err(|_| {
                    tracing::error!(topic = %name, ?code, "topic creation failed");
                });
            }
        }
    }
    wait_visible(cfg, topics.iter().map(|t| t.name.as_str()), Duration::from_secs(15))?;
    Ok(created)
}

/// Waits until the broker's metadata lists every topic: creation returns before that.
fn wait_visible<'a>(
    cfg: &KafkaConfig,
    names: impl Iterator<Item = &'a str>,
    within: Duration,
) -> Result<(), KafkaError> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = base(cfg).create()?;
    let deadline = std::time::Instant::now() + within;
    for name in names {
        loop {
            let md = consumer.fetch_metadata(Some(name), Duration::from_secs(5))?;
            let ready = md
                .topics()
                .iter()
                .any(|t| t.error().is_none() && !t.partitions().is_empty());
            if ready {
                break;
            }
            if std::time::Instant::now() >= deadline {
                return Err(KafkaError::MetadataFetch(RDKafkaErrorCode::UnknownTopicOrPartition));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(())
}

/// Offsets per (topic, partition).
pub type Offsets = std::collections::BTreeMap<(String, i32), i64>;

/// The end offset (next offset to be written) of every partition of `topics`.
pub async fn end_offsets(cfg: &KafkaConfig, topics: &[&str], timeout: Duration) -> Result<Offsets, KafkaError> {
    let cfg = cfg.clone();
    let topics: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
    off_thread(move || {
        let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
        end_offsets_blocking(&cfg, &refs, timeout)
    })
    .await
}

fn end_offsets_blocking(cfg: &KafkaConfig, topics: &[&str], timeout: Duration) -> Result<Offsets, KafkaError> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = base(cfg).set("isolation.level", "read_committed").create()?;
    let mut out = Offsets::new();
    for topic in topics {
        let md = consumer.fetch_metadata(Some(topic), timeout)?;
        for t in md.topics() {
            if let Some(err) = t.error() {
                return Err(KafkaError::MetadataFetch(err.into()));
            }
            for p in t.partitions() {
                let (_, high) = consumer.fetch_watermarks(topic, p.id(), timeout)?;
                out.insert((topic.to_string(), p.id()), high);
            }
        }
    }
    Ok(out)
}

/// Reads every committed record from `from` up to the current end of each partition.
/// Control records (transaction markers) are skipped by librdkafka; positions account for them.
pub async fn read_committed_since(
    cfg: &KafkaConfig,
    from: &Offsets,
    timeout: Duration,
) -> Result<Vec<rdkafka::message::OwnedMessage>, KafkaError> {
    use rdkafka::consumer::{Consumer, DefaultConsumerContext};
    use rdkafka::{Offset, TopicPartitionList};

    let topics: Vec<&str> = from
        .keys()
        .map(|(t, _)| t.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut end = end_offsets(cfg, &topics, timeout).await?;
    end.retain(|k, _| from.contains_key(k));
    let consumer: StreamConsumer<DefaultConsumerContext> = base(cfg)
        .set("group.id", "syncline-reader")
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .create_with_context(DefaultConsumerContext)?;
    let mut tpl = TopicPartitionList::new();
    let mut pending = 0;
    for ((topic, partition), end_offset) in &end {
        let start = from.get(&(topic.clone(), *partition)).copied().unwrap_or(0);
        if start < *end_offset {
            tpl.add_partition_offset(topic, *partition, Offset::Offset(start))?;
            pending += 1;
        }
    }
    let mut out = Vec::new();
    if pending == 0 {
        return Ok(out);
    }
    consumer.assign(&tpl)?;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let done = end.iter().all(|((topic, partition), end_offset)| {
            let start = from.get(&(topic.clone(), *partition)).copied().unwrap_or(0);
            start >= *end_offset
                || consumer.position().ok().is_some_and(|pos| {
                    pos.find_partition(topic, *partition)
                        .and_then(|p| p.offset().to_raw())
                        .is_some_and(|o| o >= *end_offset)
                })
        });
        if done || tokio::time::Instant::now() >= deadline {
            break;
        }
        match tokio::time::timeout(Duration::from_millis(200), consumer.recv()).await {
            Ok(Ok(m)) => out.push(m.detach()),
            Ok(Err(e)) => return Err(e),
            Err(_) => {}
        }
    }
    Ok(out)
}

/// Every topic a topology reads or writes, with the dead-letter and parked topics.
pub fn topology_topics(t: &crate::config::Topology, partitions: i32) -> Vec<TopicSpec> {
    let mut names: Vec<&str> = vec![
        &t.defaults.dead_letter_topic,
        &t.defaults.parked_topic,
        &t.defaults.xref_topic,
    ];
    for w in &t.workers {
        names.extend(w.inputs.iter().map(String::as_str));
        names.extend(w.outputs.iter().flat_map(|o| o.topics()));
    }
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|name| TopicSpec {
            name: name.to_string(),
            partitions,
            compacted: name == t.defaults.xref_topic,
            retention_ms: None,
        })
        .collect()
}

/// The committed records at exactly these coordinates (topic, partition, offset), in the order
/// asked. Coordinates that no longer exist (retention) are missing from the result.
pub async fn fetch_records(
    cfg: &KafkaConfig,
    wanted: &[(String, i32, i64)],
    timeout: Duration,
) -> Result<Vec<rdkafka::message::OwnedMessage>, KafkaError> {
    use rdkafka::consumer::{Consumer, DefaultConsumerContext};
    use rdkafka::message::Message;
    use rdkafka::{Offset, TopicPartitionList};

    let mut range: std::collections::BTreeMap<(String, i32), (i64, i64)> = std::collections::BTreeMap::new();
    for (t, p, o) in wanted {
        let r = range.entry((t.clone(), *p)).or_insert((*o, *o));
        r.0 = r.0.min(*o);
        r.1 = r.1.max(*o);
    }
    if range.is_empty() {
        return Ok(Vec::new());
    }
    let consumer: StreamConsumer<DefaultConsumerContext> = base(cfg)
        .set("group.id", "syncline-fetch")
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .create_with_context(DefaultConsumerContext)?;
    let mut tpl = TopicPartitionList::new();
    for ((t, p), (from, _)) in &range {
        tpl.add_partition_offset(t, *p, Offset::Offset(*from))?;
    }
    consumer.assign(&tpl)?;
    let want: std::collections::HashSet<(String, i32, i64)> = wanted.iter().cloned().collect();
    let mut found: std::collections::HashMap<(String, i32, i64), rdkafka::message::OwnedMessage> =
        std::collections::HashMap::new();
    let mut open: std::collections::BTreeSet<(String, i32)> = range.keys().cloned().collect();
    let deadline = tokio::time::Instant::now() + timeout;
    while !open.is_empty() && tokio::time::Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(300), consumer.recv()).await {
            Ok(Ok(m)) => {
                let tp = (m.topic().to_string(), m.partition());
                if let Some((_, last)) = range.get(&tp)
                    && m.offset() >= *last
                {
                    open.remove(&tp);
                }
                let coord = (tp.0, tp.1, m.offset());
                if want.contains(&coord) {
                    found.insert(coord, m.detach());
                }
            }
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                // Nothing more to read: a wanted offset may have been a transaction marker or gone.
                let pos = consumer.position()?;
                open.retain(|(t, p)| {
                    let last = range.get(&(t.clone(), *p)).map(|r| r.1).unwrap_or(0);
                    pos.find_partition(t, *p)
                        .and_then(|e| e.offset().to_raw())
                        .is_none_or(|o| o <= last)
                });
                if let Ok(ends) =
                    end_offsets(cfg, &open.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(), timeout).await
                {
                    open.retain(|(t, p)| {
                        let last = range.get(&(t.clone(), *p)).map(|r| r.1).unwrap_or(0);
                        ends.get(&(t.clone(), *p)).is_some_and(|end| *end > last)
                    });
                }
            }
        }
    }
    Ok(wanted.iter().filter_map(|c| found.remove(c)).collect())
}
