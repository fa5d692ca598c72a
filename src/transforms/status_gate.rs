//! The status gate of one lifecycle: reads the status records the workers wrote to the
//! lifecycle's internal topic (keyed by the lifecycle, so one gate instance sees all of one
//! order's statuses in order) and passes each on unchanged; the runtime's status ledger, the
//! one ledger of the lifecycle, drops what does not move it forward.
//!
//! Owns: which records a gate accepts (order status, return status, part reservation) and under
//! which output and key they leave. Must not: change a record (its idempotency key and event id
//! stay the emitting worker's, so the public topic shows the same identity) or read vendor
//! events.

use crate::adapters::RawRecord;
use crate::failure::Failure;
use crate::schema::canonical::CanonicalRecord;

use super::{Context, Transform, Transformed};

pub struct StatusGate;

impl Transform for StatusGate {
    fn apply(&self, _raw: &RawRecord<'_>, _ctx: &Context<'_>) -> Result<Transformed, Failure> {
        Err(Failure::poison(
            "NOT_A_CANONICAL_RECORD",
            "the status gate reads canonical status records (adapter `canonical`)",
        ))
    }

    fn reads_records(&self) -> bool {
        true
    }

    fn apply_record(
        &self,
        record: CanonicalRecord,
        _raw: &RawRecord<'_>,
        _ctx: &Context<'_>,
    ) -> Result<Transformed, Failure> {
        let output = match &record {
            CanonicalRecord::OrderStatus(_) => "order_status",
            CanonicalRecord::ReturnAuthorization(_) => "return_authorization",
            CanonicalRecord::PartReservation(_) => "part_reservation",
            other => {
                return Err(Failure::poison(
                    "NOT_A_STATUS",
                    format!("a {} has no lifecycle status to gate", other.record()),
                ));
            }
        };
        let meta = record.meta();
        let (key, correlation) = (meta.idempotency_key.clone(), meta.correlation_id.clone());
        Ok(Transformed::one(key, correlation, output, record))
    }
}
