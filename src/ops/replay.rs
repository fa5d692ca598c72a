//! Dead-letter operations: list, show, replay and release, safe to run twice.
//!
//! Owns: reading the dead-letter topic into [`DeadLetter`]s, filters, and the decisions topic
//! (`<dead_letter_topic>.decisions`, compacted, key `partition:offset`) that remembers which dead
//! letters were replayed or released, so a second replay is a no-op unless forced. Replays and
//! releases are transactional: the re-published record and its decision commit together.
//! Must not: process records (the workers do, when the replay reaches them).
//!
//! Why one file of ~450 lines: list, show, replay and release share the dead-letter reading, the
//! filters and the decisions topic; each operation is short, the shared reading is most of it.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::producer::{FutureProducer, Producer};
use serde::{Deserialize, Serialize};

use crate::config::KafkaConfig;
use crate::kafka::clients::{self, TopicSpec};
use crate::kafka::txn::{Out, Outbox};
use crate::runtime::dlq::header;

const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error(transparent)]
    Encode(#[from] crate::runtime::state::EncodeError),
    #[error("`{0}` is not a dead-letter position; write partition:offset, e.g. 2:1041")]
    BadPosition(String),
    #[error("no dead letter at {0} in {1}")]
    NotFound(String, String),
    #[error(
        "no filter given: pass --worker, --code, --class, --key, --since or --until, or --all to replay everything"
    )]
    NoFilter,
    #[error("no dead letter for key `{0}` is holding anything back")]
    NothingHeld(String),
    #[error("`{0}` is not a time; write RFC 3339 (2026-11-26T10:00:00Z) or a duration ago (2h, 30m)")]
    BadTime(String),
}

/// One dead letter as operators see it.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    pub partition: i32,
    pub offset: i64,
    pub worker: String,
    pub class: String,
    pub code: String,
    pub message: String,
    pub key: Option<String>,
    pub correlation_id: String,
    pub original_topic: String,
    pub original_partition: i32,
    pub original_offset: i64,
    pub attempts: u32,
    pub first_failure: String,
    pub timestamp_ms: i64,
    pub decision: Option<Decision>,
    #[serde(skip)]
    pub record: OwnedMessage,
}

impl DeadLetter {
    pub fn position(&self) -> String {
        format!("{}:{}", self.partition, self.offset)
    }

    fn header(m: &OwnedMessage, name: &str) -> String {
        m.headers()
            .and_then(|h| h.iter().find(|x| x.key == name).and_then(|x| x.value))
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default()
    }

    fn from_message(m: OwnedMessage) -> Self {
        let h = |name: &str| Self::header(&m, name);
        DeadLetter {
            partition: m.partition(),
            offset: m.offset(),
            worker: h(header::WORKER),
            class: h(header::ERROR_CLASS),
            code: h(header::ERROR_CODE),
            message: h(header::ERROR_MESSAGE),
            key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
            correlation_id: h(header::CORRELATION_ID),
            original_topic: h(header::ORIGINAL_TOPIC),
            original_partition: h(header::ORIGINAL_PARTITION).parse().unwrap_or(-1),
            original_offset: h(header::ORIGINAL_OFFSET).parse().unwrap_or(-1),
            attempts: h(header::ATTEMPTS).parse().unwrap_or(1),
            first_failure: h(header::FIRST_FAILURE),
            timestamp_ms: m.timestamp().to_millis().unwrap_or(0),
            decision: None,
            record: m,
        }
    }
}

/// What was done about a dead letter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub action: String,
    pub at: String,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub count: u32,
    #[serde(default)]
    pub reason: Option<String>,
}

/// Which dead letters an operation applies to.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub worker: Option<String>,
    pub code: Option<String>,
    pub class: Option<String>,
    pub key: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        self.worker.is_none()
            && self.code.is_none()
            && self.class.is_none()
            && self.key.is_none()
            && self.since_ms.is_none()
            && self.until_ms.is_none()
    }

    pub fn matches(&self, d: &DeadLetter) -> bool {
        self.worker.as_ref().is_none_or(|w| *w == d.worker)
            && self.code.as_ref().is_none_or(|c| *c == d.code)
            && self.class.as_ref().is_none_or(|c| *c == d.class)
            && self.key.as_ref().is_none_or(|k| d.key.as_deref() == Some(k.as_str()))
            && self.since_ms.is_none_or(|t| d.timestamp_ms >= t)
            && self.until_ms.is_none_or(|t| d.timestamp_ms <= t)
    }
}

/// `2026-11-26T10:00:00Z` or a duration ago (`2h`).
pub fn parse_time(text: &str, now_ms: i64) -> Result<i64, ReplayError> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_millis());
    }
    crate::duration::parse(text)
        .map(|d| now_ms - d.as_millis() as i64)
        .map_err(|_| ReplayError::BadTime(text.to_string()))
}

pub fn decisions_topic(dead_letter_topic: &str) -> String {
    format!("{dead_letter_topic}.decisions")
}

/// Every dead letter with its decision, oldest first.
pub async fn read(cfg: &KafkaConfig, dead_letter_topic: &str) -> Result<Vec<DeadLetter>, ReplayError> {
    let decisions = read_decisions(cfg, &decisions_topic(dead_letter_topic)).await?;
    let ends = clients::end_offsets(cfg, &[dead_letter_topic], TIMEOUT).await?;
    let from = ends.keys().map(|k| (k.clone(), 0)).collect();
    let mut out: Vec<DeadLetter> = clients::read_committed_since(cfg, &from, TIMEOUT)
        .await?
        .into_iter()
        .map(DeadLetter::from_message)
        .collect();
    for d in &mut out {
        d.decision = decisions.get(&d.position()).cloned();
    }
    out.sort_by_key(|d| (d.timestamp_ms, d.partition, d.offset));
    Ok(out)
}

async fn read_decisions(cfg: &KafkaConfig, topic: &str) -> Result<HashMap<String, Decision>, ReplayError> {
    ensure_decisions_topic(cfg, topic).await?;
    let ends = clients::end_offsets(cfg, &[topic], TIMEOUT).await?;
    let from = ends.keys().map(|k| (k.clone(), 0)).collect();
    let mut out = HashMap::new();
    for m in clients::read_committed_since(cfg, &from, TIMEOUT).await? {
        let key = m
            .key()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .unwrap_or_default();
        match m.payload().and_then(|p| serde_json::from_slice::<Decision>(p).ok()) {
            Some(d) => {
                out.insert(key, d);
            }
            None => {
                out.remove(&key);
            }
        }
    }
    Ok(out)
}

async fn ensure_decisions_topic(cfg: &KafkaConfig, topic: &str) -> Result<(), KafkaError> {
    clients::ensure_topics(
        cfg,
        &[TopicSpec {
            name: topic.to_string(),
            partitions: 1,
            compacted: true,
            retention_ms: None,
        }],
    )
    .await
    .map(|_| ())
}

/// The dead letter at `partition:offset`.
pub async fn find(cfg: &KafkaConfig, dead_letter_topic: &str, position: &str) -> Result<DeadLetter, ReplayError> {
    let (p, o) = position
        .split_once(':')
        .and_then(|(p, o)| Some((p.trim().parse::<i32>().ok()?, o.trim().parse::<i64>().ok()?)))
        .ok_or_else(|| ReplayError::BadPosition(position.to_string()))?;
    let records = clients::fetch_records(cfg, &[(dead_letter_topic.to_string(), p, o)], TIMEOUT).await?;
    let record = records
        .into_iter()
        .next()
        .ok_or_else(|| ReplayError::NotFound(position.to_string(), dead_letter_topic.to_string()))?;
    let mut d = DeadLetter::from_message(record);
    d.decision = read_decisions(cfg, &decisions_topic(dead_letter_topic))
        .await?
        .get(position)
        .cloned();
    Ok(d)
}

/// What a replay did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub selected: usize,
    pub replayed: usize,
    pub skipped_already_replayed: usize,
    pub failed: usize,
}

/// Options of one replay run.
#[derive(Debug, Clone, Default)]
pub struct ReplayOptions {
    pub to: Option<String>,
    pub dry_run: bool,
    pub force: bool,
    pub limit: Option<usize>,
    /// Records per second; None = as fast as the broker takes them.
    pub rate: Option<f64>,
}

/// Re-publishes the selected dead letters to their original topic (or `to`), each with its
/// decision, in one transaction per record. `progress` is called after each one.
pub async fn replay(
    cfg: &KafkaConfig,
    dead_letter_topic: &str,
    selected: &[DeadLetter],
    opts: &ReplayOptions,
    mut progress: impl FnMut(&DeadLetter, &str),
) -> Result<Summary, ReplayError> {
    let mut summary = Summary {
        selected: selected.len(),
        ..Summary::default()
    };
    let decisions = decisions_topic(dead_letter_topic);
    let producer = if opts.dry_run {
        None
    } else {
        Some(tool_producer(cfg).await?)
    };
    let pause = opts.rate.filter(|r| *r > 0.0).map(|r| Duration::from_secs_f64(1.0 / r));
    for d in selected.iter().take(opts.limit.unwrap_or(usize::MAX)) {
        if d.decision.as_ref().is_some_and(|x| x.action == "replayed") && !opts.force {
            summary.skipped_already_replayed += 1;
            progress(d, "skipped: already replayed");
            continue;
        }
        let target = opts.to.clone().unwrap_or_else(|| d.original_topic.clone());
        let Some(producer) = &producer else {
            summary.replayed += 1;
            progress(d, "would replay (dry run)");
            continue;
        };
        let count = d.decision.as_ref().map(|x| x.count).unwrap_or(0) + 1;
        let mut headers: Vec<(String, Vec<u8>)> = original_headers(&d.record);
        headers.push((
            header::REPLAY_OF.into(),
            format!("{dead_letter_topic}:{}", d.position()).into_bytes(),
        ));
        headers.push((header::REPLAY_COUNT.into(), count.to_string().into_bytes()));
        let decision = Decision {
            action: "replayed".into(),
            at: chrono::Utc::now().to_rfc3339(),
            to: Some(target.clone()),
            count,
            reason: None,
        };
        let decision = crate::runtime::state::json_value("dead-letter decision", &decision)?;
        // To the original partition when replaying in place: same key order as the source.
        let partition = (opts.to.is_none() && d.original_partition >= 0).then_some(d.original_partition);
        match publish(
            producer,
            &target,
            partition,
            &d.record,
            &headers,
            &decisions,
            &d.position(),
            &decision,
        )
        .await
        {
            Ok(()) => {
                summary.replayed += 1;
                progress(d, "replayed");
            }
            Err(e) => {
                summary.failed += 1;
                progress(d, &format!("failed: {e}"));
            }
        }
        if let Some(p) = pause {
            tokio::time::sleep(p).await;
        }
    }
    Ok(summary)
}

/// Lets the events held behind `key`'s dead letter flow without replaying it.
pub async fn release(
    cfg: &KafkaConfig,
    dead_letter_topic: &str,
    key: &str,
    reason: &str,
) -> Result<DeadLetter, ReplayError> {
    let all = read(cfg, dead_letter_topic).await?;
    let d = all
        .into_iter()
        .rev()
        .find(|d| d.key.as_deref() == Some(key) && d.decision.is_none())
        .ok_or_else(|| ReplayError::NothingHeld(key.to_string()))?;
    let producer = tool_producer(cfg).await?;
    let headers = vec![
        (header::CONTROL.to_string(), b"release".to_vec()),
        (header::RELEASE_REASON.to_string(), reason.as_bytes().to_vec()),
        (
            header::REPLAY_OF.to_string(),
            format!("{dead_letter_topic}:{}", d.position()).into_bytes(),
        ),
    ];
    let decision = Decision {
        action: "released".into(),
        at: chrono::Utc::now().to_rfc3339(),
        to: None,
        count: 0,
        reason: Some(reason.to_string()),
    };
    let value = crate::runtime::state::json_value("dead-letter decision", &decision)?;
    // The control record goes to the partition the key's events are on, behind them.
    producer.begin_transaction()?;
    let mut outbox = Outbox::new(&producer);
    outbox
        .send(Out {
            topic: &d.original_topic,
            partition: Some(d.original_partition),
            key: Some(key.as_bytes()),
            payload: None,
            headers: &crate::kafka::txn::borrowed(&headers),
        })
        .await?;
    let position = d.position();
    outbox
        .send(Out {
            topic: &decisions_topic(dead_letter_topic),
            partition: None,
            key: Some(position.as_bytes()),
            payload: Some(&value),
            headers: &[],
        })
        .await?;
    outbox.flush().await?;
    producer.commit_transaction(TIMEOUT)?;
    Ok(d)
}

async fn tool_producer(cfg: &KafkaConfig) -> Result<FutureProducer, KafkaError> {
    let id = format!("syncline.dlq-tool.{}", uuid::Uuid::new_v4());
    clients::transactional_producer(cfg, &id, TIMEOUT).await
}

/// The source record's own headers (and lineage), without the failure headers of the dead letter.
fn original_headers(m: &OwnedMessage) -> Vec<(String, Vec<u8>)> {
    let failure = [
        header::WORKER,
        header::ERROR_CLASS,
        header::ERROR_CODE,
        header::ERROR_MESSAGE,
        header::CORRELATION_ID,
        header::IDEMPOTENCY_KEY,
        header::REPLAY_OF,
        header::REPLAY_COUNT,
    ];
    m.headers()
        .map(|h| {
            h.iter()
                .filter(|x| !failure.contains(&x.key))
                .map(|x| (x.key.to_string(), x.value.map(<[u8]>::to_vec).unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default()
}

#[allow(clippy::too_many_arguments)]
async fn publish(
    producer: &FutureProducer,
    topic: &str,
    partition: Option<i32>,
    record: &OwnedMessage,
    headers: &[(String, Vec<u8>)],
    decisions: &str,
    position: &str,
    decision: &[u8],
) -> Result<(), KafkaError> {
    producer.begin_transaction()?;
    let result = async {
        let mut outbox = Outbox::new(producer);
        outbox
            .send(Out {
                topic,
                partition,
                key: record.key(),
                payload: record.payload(),
                headers: &crate::kafka::txn::borrowed(headers),
            })
            .await?;
        outbox
            .send(Out {
                topic: decisions,
                partition: None,
                key: Some(position.as_bytes()),
                payload: Some(decision),
                headers: &[],
            })
            .await?;
        outbox.flush().await
    }
    .await;
    match result {
        Ok(()) => producer.commit_transaction(TIMEOUT),
        Err(e) => {
            let _ = producer.abort_transaction(TIMEOUT);
            Err(e)
        }
    }
}
