//! Sending a batch inside one Kafka transaction without waiting for each record, and ending it.
//!
//! Owns: enqueueing records with headers, back-pressure on a full producer queue, awaiting every
//! delivery, and the commit sequence (deliveries and input offsets, then the commit). Must not:
//! decide when a transaction begins, commits or aborts (the worker does).

use std::time::Duration;

use rdkafka::TopicPartitionList;
use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::types::{RDKafkaErrorCode, RDKafkaRespErr};

use crate::kafka::clients::off_thread;

pub struct Outbox<'p> {
    /// None: records are captured in memory instead (`syncline test`).
    producer: Option<&'p FutureProducer>,
    inflight: Vec<DeliveryFuture>,
    pub captured: Vec<Captured>,
}

/// A record an in-memory outbox kept.
#[derive(Debug, Clone, PartialEq)]
pub struct Captured {
    pub topic: String,
    pub partition: Option<i32>,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
}

/// One record to send. Headers are borrowed: the hot path builds none of its own.
pub struct Out<'a> {
    pub topic: &'a str,
    pub partition: Option<i32>,
    pub key: Option<&'a [u8]>,
    pub payload: Option<&'a [u8]>,
    pub headers: &'a [(&'a str, &'a [u8])],
}

/// Owned headers (dead letters, parked records) as `Out` takes them.
pub fn borrowed(headers: &[(String, Vec<u8>)]) -> Vec<(&str, &[u8])> {
    headers.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect()
}

impl<'p> Outbox<'p> {
    pub fn new(producer: &'p FutureProducer) -> Self {
        Self {
            producer: Some(producer),
            inflight: Vec::new(),
            captured: Vec::new(),
        }
    }

    /// An outbox that keeps what it is given.
    pub fn memory() -> Outbox<'static> {
        Outbox {
            producer: None,
            inflight: Vec::new(),
            captured: Vec::new(),
        }
    }

    pub async fn send(&mut self, out: Out<'_>) -> Result<(), KafkaError> {
        let Some(producer) = self.producer else {
            self.captured.push(Captured {
                topic: out.topic.to_string(),
                partition: out.partition,
                key: out.key.map(<[u8]>::to_vec),
                payload: out.payload.map(<[u8]>::to_vec),
                headers: out.headers.iter().map(|(k, v)| (k.to_string(), v.to_vec())).collect(),
            });
            return Ok(());
        };
        let mut headers = OwnedHeaders::new_with_capacity(out.headers.len());
        for (k, v) in out.headers {
            headers = headers.insert(Header {
                key: k,
                value: Some(*v),
            });
        }
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(out.topic).headers(headers);
        if let Some(p) = out.partition {
            record = record.partition(p);
        }
        if let Some(k) = out.key {
            record = record.key(k);
        }
        if let Some(v) = out.payload {
            record = record.payload(v);
        }
        loop {
            match producer.send_result(record) {
                Ok(f) => {
                    self.inflight.push(f);
                    return Ok(());
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    // The local queue is full: wait for what is in flight, then try again.
                    record = back;
                    self.flush().await?;
                    if self.inflight.is_empty() {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
                Err((e, _)) => return Err(e),
            }
        }
    }

    /// Sends what is queued at once and waits for every delivery report; the first failure
    /// fails the batch.
    pub async fn flush(&mut self) -> Result<(), KafkaError> {
        if let Some(producer) = self.producer
            && !self.inflight.is_empty()
        {
            let producer = producer.clone();
            off_thread(move || send_queued_now(&producer, FLUSH_TIMEOUT)).await?;
        }
        let mut first_error = None;
        for f in self.inflight.drain(..) {
            match f.await {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => {
                    first_error.get_or_insert(e);
                }
                Err(_) => {
                    first_error.get_or_insert(KafkaError::Canceled);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends every queued record now and blocks until all are delivered (or `timeout`).
///
/// Why not `Producer::flush`: rdkafka's wrapper calls librdkafka's flush with a zero timeout and
/// then sleeps in 100 ms polls, and librdkafka ignores `linger.ms` only while its flush call
/// lasts. A transaction's batch is complete when this is called, so lingering only adds latency:
/// awaiting the delivery futures alone waited out the linger on every batch.
fn send_queued_now(producer: &FutureProducer, timeout: Duration) -> Result<(), KafkaError> {
    let millis = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: the handle is live for as long as `producer` is borrowed; rd_kafka_flush is
    // thread-safe. The producer's own polling thread serves the delivery reports it waits for.
    let err = unsafe { rdkafka::bindings::rd_kafka_flush(producer.client().native_ptr(), millis) };
    match err {
        RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR => Ok(()),
        e => Err(KafkaError::Flush(e.into())),
    }
}

/// Ends the open transaction: every record of `outbox` delivered and the input `offsets` (if any)
/// added, concurrently, then the commit. Any failure leaves the transaction to abort.
pub async fn commit(
    producer: &FutureProducer,
    mut outbox: Outbox<'_>,
    offsets: Option<(TopicPartitionList, ConsumerGroupMetadata)>,
    timeout: Duration,
) -> Result<(), KafkaError> {
    let add_offsets = async {
        match offsets {
            Some((tpl, group)) => {
                let p = producer.clone();
                off_thread(move || p.send_offsets_to_transaction(&tpl, &group, timeout)).await
            }
            None => Ok(()),
        }
    };
    let (delivered, added) = tokio::join!(outbox.flush(), add_offsets);
    delivered?;
    added?;
    let p = producer.clone();
    off_thread(move || p.commit_transaction(timeout)).await
}
