//! Confluent wire format (magic byte 0, 4-byte schema id, Avro datum) through the registry.
//!
//! Owns: encoding canonical records under `<topic>-value` and decoding any registered writer
//! schema into a reader schema, with ids and schemas cached so the hot path makes no registry
//! call after the first record of each (subject, schema). Must not: retry (the runtime decides),
//! or guess: every failure is a specific [`CodecError`].
//!
//! Why this file is ~410 lines: encoding and decoding share the wire header, the schema-id
//! caches and the error mapping, and each direction is one short path through them; split, the
//! cache would be shared across two files because both directions fill it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::schema::ResolvedSchema;
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use schema_registry_converter::async_impl::avro::AvroDecoder;
use schema_registry_converter::async_impl::schema_registry::{SrSettings, post_schema};
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::{SchemaType, SuppliedSchema};

use super::canonical::{Canonical, CanonicalRecord};
use super::catalog::SchemaVersion;
use super::compat::error_chain;
use super::encoder::Plan;

pub const MAGIC_BYTE: u8 = 0;
const HEADER_LEN: usize = 5;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// Transient: the registry did not answer. Retry; never dead-letter for this.
    #[error("schema registry unavailable: {0}")]
    RegistryUnavailable(String),
    /// The registry answered no: e.g. an incompatible schema under a BACKWARD subject.
    #[error("schema registry refused `{subject}`: {message}")]
    RegistryRefused { subject: String, message: String },
    #[error("empty payload")]
    Empty,
    #[error("wrong magic byte {0:#04x}; not Confluent wire format (expected 0x00)")]
    WrongMagic(u8),
    #[error("payload of {0} bytes is shorter than the 5-byte wire header")]
    Truncated(usize),
    #[error("schema id {0} is not known to the registry")]
    UnknownSchemaId(u32),
    #[error("Avro datum does not match writer schema {id}: {message}")]
    Malformed { id: u32, message: String },
    #[error("{trailing} bytes left after the Avro datum (schema id {id})")]
    TrailingBytes { id: u32, trailing: usize },
    #[error("record does not fit schema {record}: {message}")]
    Encode { record: String, message: String },
    #[error("decoded record does not fit the Rust type of {record}: {message}")]
    Shape { record: String, message: String },
}

impl CodecError {
    pub fn is_transient(&self) -> bool {
        matches!(self, CodecError::RegistryUnavailable(_))
    }
}

/// A registered writer schema.
/// Everything needed to encode for one subject, built once: the schema's names resolved and the
/// datum writer ready. The schema is leaked to give the writer a `'static` borrow; there is one
/// per (topic, record, version) the process writes, a handful for its whole life.
struct Writer {
    id: u32,
    schema: &'static Schema,
    resolved: ResolvedSchema<'static>,
    datum: GenericDatumWriter<'static>,
    /// How canonical values are written (None: the schema uses something the plan lacks).
    plan: Option<Plan>,
}

impl Writer {
    fn new(id: u32, schema: &Schema) -> Result<Self, apache_avro::Error> {
        let schema: &'static Schema = Box::leak(Box::new(schema.clone()));
        let resolved = ResolvedSchema::try_from(schema)?;
        Ok(Self {
            id,
            schema,
            plan: Plan::compile(schema, resolved.get_names()),
            resolved,
            // Values are resolved against the schema first, which checks them.
            datum: GenericDatumWriter::builder(schema).validate(false).build()?,
        })
    }
}

/// Writers by topic, then by (record, version): looked up on every record without allocating.
type Writers = HashMap<String, Vec<(String, u32, Arc<Writer>)>>;

/// Encoder and decoder sharing one registry connection and its caches.
pub struct Codec {
    settings: SrSettings,
    decoder: AvroDecoder,
    writers: RwLock<Writers>,
    /// `syncline_registry_requests_total{operation, outcome}`, when metrics are wanted.
    requests: Option<prometheus::IntCounterVec>,
    /// No registry: schema id 0, checked against the local schema only (`syncline test`).
    offline: bool,
}

impl Codec {
    pub fn new(settings: SrSettings) -> Self {
        Self {
            decoder: AvroDecoder::new(settings.clone()),
            settings,
            writers: RwLock::new(HashMap::new()),
            requests: None,
            offline: false,
        }
    }

    /// A codec that never calls a registry: it encodes with schema id 0 against the local schema
    /// (so every value is still checked against `schemas/`) and decodes id 0 with the reader's
    /// schema. For contract tests without a broker or registry.
    pub fn offline() -> Self {
        let mut codec = Self::new(SrSettings::new("http://127.0.0.1:9".to_string()));
        codec.offline = true;
        codec
    }

    /// Counts every registry call this codec makes (cache hits make none).
    pub fn with_request_counter(mut self, counter: prometheus::IntCounterVec) -> Self {
        self.requests = Some(counter);
        self
    }

    fn count(&self, operation: &str, result: &Result<(), &CodecError>) {
        if let Some(c) = &self.requests {
            let outcome = match result {
                Ok(()) => "ok",
                Err(e) if e.is_transient() => "unavailable",
                Err(_) => "refused",
            };
            c.with_label_values(&[operation, outcome]).inc();
        }
    }

    /// Encodes `record` for `topic` with `schema` (registering it under `<topic>-value` once).
    pub async fn encode<T: Canonical>(
        &self,
        topic: &str,
        schema: &SchemaVersion,
        record: &T,
    ) -> Result<Vec<u8>, CodecError> {
        let writer = self.writer(topic, schema).await?;
        let mut out = Vec::with_capacity(512);
        out.push(MAGIC_BYTE);
        out.extend_from_slice(&writer.id.to_be_bytes());
        // Straight from the Rust type to Avro bytes by the schema's plan: no intermediate Value
        // tree, no resolution pass, no field lookups. The types mirror the latest versions;
        // writing an older version (fields the type has and the schema does not) goes through a
        // Value and schema resolution instead.
        if let Some(plan) = &writer.plan {
            if plan.write(&mut out, record).is_ok() {
                return Ok(out);
            }
            out.truncate(HEADER_LEN);
        }
        let value = apache_avro::to_value(record).map_err(|e| CodecError::Encode {
            record: T::RECORD.to_string(),
            message: error_chain(&e),
        })?;
        self.encode_value(topic, schema, value).await
    }

    /// Encodes any canonical record (what transforms emit).
    pub async fn encode_record(
        &self,
        topic: &str,
        schema: &SchemaVersion,
        record: &CanonicalRecord,
    ) -> Result<Vec<u8>, CodecError> {
        use CanonicalRecord as R;
        match record {
            R::SalesOrder(r) => self.encode(topic, schema, r).await,
            R::OrderStatus(r) => self.encode(topic, schema, r).await,
            R::Shipment(r) => self.encode(topic, schema, r).await,
            R::Invoice(r) => self.encode(topic, schema, r).await,
            R::PaymentStatus(r) => self.encode(topic, schema, r).await,
            R::CustomerMaster(r) => self.encode(topic, schema, r).await,
            R::AccountGovernance(r) => self.encode(topic, schema, r).await,
            R::ReturnAuthorization(r) => self.encode(topic, schema, r).await,
            R::BillingSchedule(r) => self.encode(topic, schema, r).await,
            R::PartReservation(r) => self.encode(topic, schema, r).await,
        }
    }

    /// Encodes a generic Avro value (used by tests and tools that hold no Rust type).
    pub async fn encode_value(&self, topic: &str, schema: &SchemaVersion, value: Value) -> Result<Vec<u8>, CodecError> {
        let writer = self.writer(topic, schema).await?;
        let encode_err = |e: apache_avro::Error| CodecError::Encode {
            record: schema.record.clone(),
            message: error_chain(&e),
        };
        let resolved = value
            .resolve_with_names(writer.schema, writer.resolved.get_names())
            .map_err(encode_err)?;
        let mut out = Vec::with_capacity(256);
        out.push(MAGIC_BYTE);
        out.extend_from_slice(&writer.id.to_be_bytes());
        writer.datum.write_value_ref(&mut out, &resolved).map_err(encode_err)?;
        Ok(out)
    }

    async fn writer(&self, topic: &str, schema: &SchemaVersion) -> Result<Arc<Writer>, CodecError> {
        let cached = self.writers.read().ok().and_then(|m| {
            m.get(topic)?
                .iter()
                .find(|(r, v, _)| *r == schema.record && *v == schema.version)
                .map(|(_, _, w)| w.clone())
        });
        if let Some(w) = cached {
            return Ok(w);
        }
        let id = if self.offline {
            0
        } else {
            let subject = format!("{topic}-value");
            let supplied = SuppliedSchema::new(Some(schema.full_name()), SchemaType::Avro, schema.raw.clone());
            let registered = post_schema(&self.settings, subject.clone(), supplied)
                .await
                .map_err(|e| registry_error(&subject, e));
            self.count("register", &registered.as_ref().map(|_| ()));
            registered?.id
        };
        let writer = Arc::new(Writer::new(id, &schema.schema).map_err(|e| CodecError::Encode {
            record: schema.record.clone(),
            message: error_chain(&e),
        })?);
        if let Ok(mut map) = self.writers.write() {
            map.entry(topic.to_string())
                .or_default()
                .push((schema.record.clone(), schema.version, writer.clone()));
        }
        Ok(writer)
    }

    /// Decodes wire-format bytes into `T`, resolving the writer schema to `reader`.
    pub async fn decode<T: Canonical>(&self, bytes: &[u8], reader: &SchemaVersion) -> Result<T, CodecError> {
        let value = self.decode_value(bytes, Some(&reader.schema)).await?;
        apache_avro::from_value::<T>(&value).map_err(|e| CodecError::Shape {
            record: T::RECORD.to_string(),
            message: error_chain(&e),
        })
    }

    /// Decodes the canonical record `reader` describes (the status gate reads records the
    /// workers wrote).
    pub async fn decode_record(&self, bytes: &[u8], reader: &SchemaVersion) -> Result<CanonicalRecord, CodecError> {
        use super::canonical::*;
        Ok(match reader.record.as_str() {
            OrderStatus::RECORD => CanonicalRecord::OrderStatus(self.decode(bytes, reader).await?),
            ReturnAuthorization::RECORD => CanonicalRecord::ReturnAuthorization(self.decode(bytes, reader).await?),
            PartReservation::RECORD => CanonicalRecord::PartReservation(self.decode(bytes, reader).await?),
            other => {
                return Err(CodecError::Shape {
                    record: other.to_string(),
                    message: "only lifecycle status records are read back".into(),
                });
            }
        })
    }

    /// Decodes into a generic value; with `reader`, resolved to it (Avro schema resolution).
    pub async fn decode_value(&self, bytes: &[u8], reader: Option<&Schema>) -> Result<Value, CodecError> {
        let (id, mut payload) = split_header(bytes)?;
        if self.offline {
            let reader = reader.ok_or(CodecError::UnknownSchemaId(id))?;
            let datum = GenericDatumReader::builder(reader)
                .build()
                .map_err(|e| CodecError::Malformed {
                    id,
                    message: error_chain(&e),
                })?;
            return datum.read_value(&mut payload).map_err(|e| CodecError::Malformed {
                id,
                message: error_chain(&e),
            });
        }
        let writer = self.decoder.get_schema(id).await.map_err(|e| {
            if e.retriable {
                CodecError::RegistryUnavailable(error_chain(&e))
            } else {
                CodecError::UnknownSchemaId(id)
            }
        })?;
        let malformed = |e: apache_avro::Error| CodecError::Malformed {
            id,
            message: error_chain(&e),
        };
        let mut builder = GenericDatumReader::builder(&writer.parsed).build().map_err(malformed)?;
        if let Some(reader) = reader {
            builder = GenericDatumReader::builder(&writer.parsed)
                .reader_schema(reader)
                .build()
                .map_err(malformed)?;
        }
        let value = builder.read_value(&mut payload).map_err(malformed)?;
        if !payload.is_empty() {
            return Err(CodecError::TrailingBytes {
                id,
                trailing: payload.len(),
            });
        }
        Ok(value)
    }
}

/// Splits the 5-byte Confluent header from the datum.
pub fn split_header(bytes: &[u8]) -> Result<(u32, &[u8]), CodecError> {
    match bytes.first() {
        None => Err(CodecError::Empty),
        Some(&m) if m != MAGIC_BYTE => Err(CodecError::WrongMagic(m)),
        Some(_) if bytes.len() < HEADER_LEN => Err(CodecError::Truncated(bytes.len())),
        Some(_) => {
            let id = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
            Ok((id, &bytes[HEADER_LEN..]))
        }
    }
}

fn registry_error(subject: &str, e: SRCError) -> CodecError {
    if e.retriable {
        CodecError::RegistryUnavailable(error_chain(&e))
    } else {
        CodecError::RegistryRefused {
            subject: subject.to_string(),
            message: error_chain(&e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_errors_are_specific() {
        assert_eq!(split_header(&[]), Err(CodecError::Empty));
        assert_eq!(split_header(&[1, 0, 0, 0, 1]), Err(CodecError::WrongMagic(1)));
        assert_eq!(split_header(&[0, 0, 1]), Err(CodecError::Truncated(3)));
        assert_eq!(split_header(&[0, 0, 0, 1, 2, 9]), Ok((258, &[9u8][..])));
    }

    /// The plan (serde → bytes) writes exactly what the Value-and-resolution path writes, for
    /// every record type and every version of its schema: the fast path changes no byte on the
    /// wire. Latest versions must take the plan; older ones fall back and still match.
    #[tokio::test]
    async fn planned_encoding_equals_the_resolved_value_encoding() {
        let catalog =
            super::super::Catalog::load(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/schemas"))).unwrap();
        let codec = Codec::offline();
        let mut records = super::super::examples::all(1_764_000_000_000);
        // The same records with every optional text left out, for the `null` branches.
        let mut sparse = super::super::examples::all(1_764_000_000_000);
        for r in &mut sparse {
            if let CanonicalRecord::OrderStatus(s) = r {
                (s.reason, s.hold_reason, s.erp_order_id, s.expected_delivery_date) = (None, None, None, None);
            }
        }
        records.extend(sparse);
        for record in records {
            let name = record.record();
            let value = match &record {
                CanonicalRecord::SalesOrder(r) => apache_avro::to_value(r),
                CanonicalRecord::OrderStatus(r) => apache_avro::to_value(r),
                CanonicalRecord::Shipment(r) => apache_avro::to_value(r),
                CanonicalRecord::Invoice(r) => apache_avro::to_value(r),
                CanonicalRecord::PaymentStatus(r) => apache_avro::to_value(r),
                CanonicalRecord::CustomerMaster(r) => apache_avro::to_value(r),
                CanonicalRecord::AccountGovernance(r) => apache_avro::to_value(r),
                CanonicalRecord::ReturnAuthorization(r) => apache_avro::to_value(r),
                CanonicalRecord::BillingSchedule(r) => apache_avro::to_value(r),
                CanonicalRecord::PartReservation(r) => apache_avro::to_value(r),
            }
            .unwrap();
            let latest = catalog.latest(name).unwrap().version;
            for version in 1..=latest {
                let schema = catalog.version(name, version).unwrap();
                let planned = codec.encode_record("t", schema, &record).await.unwrap();
                let resolved = codec.encode_value("t", schema, value.clone()).await.unwrap();
                assert_eq!(planned, resolved, "{name} v{version}");
                if version == latest {
                    let writer = codec.writer("t", schema).await.unwrap();
                    let plan = writer.plan.as_ref().expect("the latest schema has a plan");
                    let mut out = Vec::new();
                    match &record {
                        CanonicalRecord::OrderStatus(r) => plan.write(&mut out, r),
                        CanonicalRecord::SalesOrder(r) => plan.write(&mut out, r),
                        CanonicalRecord::Shipment(r) => plan.write(&mut out, r),
                        CanonicalRecord::Invoice(r) => plan.write(&mut out, r),
                        CanonicalRecord::PaymentStatus(r) => plan.write(&mut out, r),
                        CanonicalRecord::CustomerMaster(r) => plan.write(&mut out, r),
                        CanonicalRecord::AccountGovernance(r) => plan.write(&mut out, r),
                        CanonicalRecord::ReturnAuthorization(r) => plan.write(&mut out, r),
                        CanonicalRecord::BillingSchedule(r) => plan.write(&mut out, r),
                        CanonicalRecord::PartReservation(r) => plan.write(&mut out, r),
                    }
                    .unwrap_or_else(|e| panic!("{name} v{version} is off its plan: {e}"));
                    assert_eq!(out, planned[HEADER_LEN..], "{name}");
                }
            }
        }
    }
}
