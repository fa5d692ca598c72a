//! Kafka as syncline uses it: the clients (transactional producers, read-committed consumers,
//! admin, offset and metadata reads) and the outbox that sends a batch inside one transaction.
//!
//! Owns: the librdkafka settings exactly-once depends on and the commit sequence. Must not: know
//! about records, stores or workers (the runtime builds on it; the tools in `ops` too).

pub mod clients;
pub mod txn;
