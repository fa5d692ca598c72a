//! Sending a batch inside one Kafka transaction without waiting for each record.
//!
//! Owns: enqueueing records with headers, back-pressure on a full producer queue, and awaiting
//! every delivery before the commit. Must not: begin, commit or abort (the worker decides).

use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;

pub struct Outbox<'p> {
    producer: &'p FutureProducer,
    inflight: Vec<DeliveryFuture>,
}

/// One record to send.
pub struct Out<'a> {
    pub topic: &'a str,
    pub partition: Option<i32>,
    pub key: Option<&'a [u8]>,
    pub payload: Option<&'a [u8]>,
    pub headers: &'a [(String, Vec<u8>)],
}

impl<'p> Outbox<'p> {
    pub fn new(producer: &'p FutureProducer) -> Self {
        Self {
            producer,
            inflight: Vec::new(),
        }
    }

    pub async fn send(&mut self, out: Out<'_>) -> Result<(), KafkaError> {
        let mut headers = OwnedHeaders::new_with_capacity(out.headers.len());
        for (k, v) in out.headers {
            headers = headers.insert(Header { key: k, value: Some(v) });
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
            match self.producer.send_result(record) {
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

    /// Waits for every delivery report; the first failure fails the batch.
    pub async fn flush(&mut self) -> Result<(), KafkaError> {
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
