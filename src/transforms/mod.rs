//! Transforms: typed source events → canonical records, one module per workflow.
//!
//! Owns: the catalogue of transform names a worker may name, the outputs each emits, and the
//! [`Transform`] contract: one raw record in, an idempotency key and canonical records out, or a
//! classified [`Failure`]. The same code runs in `syncline run` and `syncline test`. Must not: do
//! I/O or keep state between records (the runtime owns state).

pub mod currency;
pub mod erp;
pub mod governance;
pub mod master_data;
pub mod order_status;
pub mod order_submission;
pub mod order_to_cash;
pub mod parts;
pub mod returns;
pub mod status_gate;
pub mod subscription;

use crate::adapters::RawRecord;
use crate::failure::Failure;
use crate::schema::canonical::{CanonicalRecord, Meta};
use crate::xref::XrefLookup;
use erp::{ErpFlows, Flow};

/// What a transform is called in `topology.toml` and which named outputs it emits.
#[derive(Debug, Clone, Copy)]
pub struct TransformSpec {
    pub name: &'static str,
    pub outputs: &'static [&'static str],
    pub summary: &'static str,
    /// Adapter kinds this transform reads.
    pub adapters: &'static [&'static str],
}

const ERP: &[&str] = &["sap_s4", "d365_fo", "generic_erp"];

const SPECS: &[TransformSpec] = &[
    TransformSpec {
        name: "order_submission",
        outputs: &["sales_order"],
        summary: "Salesforce order submitted -> SalesOrder, routed to the owning ERP",
        adapters: &["salesforce"],
    },
    TransformSpec {
        name: "erp_order_events",
        outputs: &["order_status"],
        summary: "ERP sales-order created/accepted/rejected/credit block -> OrderStatus",
        adapters: ERP,
    },
    TransformSpec {
        name: "erp_delivery_events",
        outputs: &["shipment", "order_status"],
        summary: "ERP outbound delivery / goods issue -> Shipment and OrderStatus SHIPPED",
        adapters: ERP,
    },
    TransformSpec {
        name: "erp_billing_events",
        outputs: &["invoice", "order_status"],
        summary: "ERP billing document posted -> Invoice and OrderStatus INVOICED",
        adapters: ERP,
    },
    TransformSpec {
        name: "erp_payment_events",
        outputs: &["payment", "order_status"],
        summary: "ERP payment posted / dunning -> PaymentStatus and OrderStatus PAID",
        adapters: ERP,
    },
    TransformSpec {
        name: "erp_events",
        outputs: &["order_status", "shipment", "invoice", "payment"],
        summary: "Every order-to-cash event of one ERP on one topic -> the records of each flow",
        adapters: ERP,
    },
    TransformSpec {
        name: "return_requests",
        outputs: &["return_authorization"],
        summary: "Salesforce return request (Case / Return_Requested__e) -> ReturnAuthorization for the ERP",
        adapters: &["salesforce"],
    },
    TransformSpec {
        name: "erp_return_events",
        outputs: &["return_authorization", "invoice"],
        summary: "ERP RMA authorized/rejected/goods received and return credit memo -> ReturnAuthorization (+ CREDIT_MEMO Invoice)",
        adapters: ERP,
    },
    TransformSpec {
        name: "opportunity_won",
        outputs: &["billing_schedule"],
        summary: "Salesforce Opportunity closed-won with subscription lines -> BillingSchedule for the ERP",
        adapters: &["salesforce"],
    },
    TransformSpec {
        name: "erp_subscription_events",
        outputs: &["payment"],
        summary: "ERP billing plan created, subscription payments and dunning -> PaymentStatus (collection risk)",
        adapters: ERP,
    },
    TransformSpec {
        name: "part_requests",
        outputs: &["part_reservation"],
        summary: "Salesforce part reservation request -> PartReservation allocation request for the ERP",
        adapters: &["salesforce"],
    },
    TransformSpec {
        name: "erp_allocation_events",
        outputs: &["part_reservation"],
        summary: "ERP allocation result (allocated / back-ordered / rejected) -> PartReservation",
        adapters: ERP,
    },
    TransformSpec {
        name: "status_gate",
        outputs: &["order_status", "return_authorization", "part_reservation"],
        summary: "lifecycle statuses of several workers (internal topic) -> the public status topic, forward moves only",
        adapters: &["canonical"],
    },
    TransformSpec {
        name: "account_governance",
        outputs: &["account_governance", "customer_master"],
        summary: "Salesforce Account change -> governed lifecycle (checks, review, operator decisions) -> AccountGovernance, and CustomerMaster once approved",
        adapters: &["salesforce"],
    },
];

pub fn spec(name: &str) -> Option<&'static TransformSpec> {
    SPECS.iter().find(|s| s.name == name)
}

pub fn names() -> Vec<&'static str> {
    SPECS.iter().map(|s| s.name).collect()
}

/// One canonical record for one named output of the worker.
#[derive(Debug, Clone, PartialEq)]
pub struct Emitted {
    pub output: &'static str,
    pub record: CanonicalRecord,
}

/// The result of transforming one source record.
#[derive(Debug, Clone, PartialEq)]
pub struct Transformed {
    /// Identity of the source event: a re-sent event has the same key (dedupe).
    pub idempotency_key: String,
    /// The business transaction (order) the event belongs to; outputs are keyed by it.
    pub correlation_id: String,
    pub outputs: Vec<Emitted>,
    /// Cross-reference entries the record writes (a governed account's state), on the
    /// cross-reference topic in the record's transaction.
    pub writes: Vec<crate::xref::XrefEntry>,
    /// Whether the idempotency key is remembered (dedupe). A record that is not for this
    /// worker at all (another entry of the cross-reference topic) is not: remembering every
    /// one would push real keys out of the store.
    pub remember: bool,
}

impl Transformed {
    /// A source event that is not for the other side (an update that is not a submission): it
    /// is consumed and remembered, and emits nothing.
    pub fn nothing(idempotency_key: String, correlation_id: String) -> Self {
        Self {
            idempotency_key,
            correlation_id,
            outputs: vec![],
            writes: vec![],
            remember: true,
        }
    }

    /// A record that concerns nothing this worker keeps: consumed, not remembered.
    pub fn ignored() -> Self {
        Self {
            remember: false,
            ..Self::nothing(String::new(), String::new())
        }
    }

    pub fn one(idempotency_key: String, correlation_id: String, output: &'static str, record: CanonicalRecord) -> Self {
        Self {
            idempotency_key,
            correlation_id,
            outputs: vec![Emitted { output, record }],
            writes: vec![],
            remember: true,
        }
    }
}

/// A Salesforce event read for one workflow: either a change event of `entity` or a platform
/// event whose record id is in `id_field`.
pub struct SalesforceInput {
    pub event: crate::adapters::salesforce::SfEvent,
    /// The event's identity (EventUuid, or the change event's commit and sequence).
    pub identity: String,
    pub idempotency_key: String,
    /// The record the event is about (change event record id, or the platform event's field).
    pub record_id: String,
    pub is_change: bool,
}

impl SalesforceInput {
    /// `what` names the workflow in the error for another entity's change event.
    pub fn read(raw: &RawRecord<'_>, entity: &str, id_field: &str, what: &str) -> Result<Self, Failure> {
        let event = crate::adapters::salesforce::parse(raw)?;
        let identity = event.identity()?;
        let (record_id, is_change) = match &event.change {
            Some(h) if h.entity_name == entity => (h.record_ids[0].clone(), true),
            Some(h) => {
                return Err(Failure::business(
                    "UNKNOWN_EVENT_TYPE",
                    format!("{} change events are not {what}", h.entity_name),
                ));
            }
            None => (event.required(id_field)?, false),
        };
        Ok(Self {
            idempotency_key: format!("salesforce:{identity}"),
            event,
            identity,
            record_id,
            is_change,
        })
    }

    /// The source of this event's outputs, correlated by `correlation_id`.
    pub fn source<'a>(&'a self, raw: &'a RawRecord<'_>, correlation_id: &'a str) -> Source<'a> {
        Source::salesforce(
            raw,
            &self.idempotency_key,
            correlation_id,
            self.event.event_uuid.as_deref().unwrap_or(&self.identity),
            self.event.occurred_at,
        )
    }
}

/// What a transform may consult besides the record: the clock and the cross-reference.
pub struct Context<'a> {
    pub now_ms: i64,
    pub xref: &'a dyn XrefLookup,
}

/// The contract every workflow implements.
pub trait Transform: Send + Sync {
    fn apply(&self, raw: &RawRecord<'_>, ctx: &Context<'_>) -> Result<Transformed, Failure>;

    /// Whether the input is a canonical record (Avro, the worker's output schema) rather than a
    /// vendor event: the pipeline decodes it and calls [`Transform::apply_record`].
    fn reads_records(&self) -> bool {
        false
    }

    /// Whether the transform reads state it writes (cross-reference entries): its records are
    /// not prepared ahead, and each sees the writes of the batch's earlier records.
    fn reads_own_writes(&self) -> bool {
        false
    }

    fn apply_record(
        &self,
        record: CanonicalRecord,
        raw: &RawRecord<'_>,
        ctx: &Context<'_>,
    ) -> Result<Transformed, Failure> {
        let _ = (record, raw, ctx);
        Err(Failure::poison(
            "UNEXPECTED_RECORD",
            "this transform reads vendor events, not canonical records",
        ))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("worker `{worker}`: transform `{transform}` is not available in this build")]
    NotAvailable { worker: String, transform: String },
    #[error("worker `{worker}`: {kind} (in [worker.event_types])")]
    UnknownKind {
        worker: String,
        kind: crate::adapters::erp::catalog::UnknownKind,
    },
    #[error("worker `{worker}`: transform `{transform}` cannot read adapter `{adapter}`; it reads: {valid}")]
    WrongAdapter {
        worker: String,
        transform: String,
        adapter: String,
        valid: String,
    },
}

/// Builds the transform `transform` for worker `worker`, reading events of adapter `adapter`
/// with the ERP event ids the worker adds to its profile (`[worker.event_types]`) and its
/// governance rules (`[worker.governance]`).
pub fn build(
    worker: &str,
    transform: &str,
    adapter: &str,
    event_types: &std::collections::BTreeMap<String, String>,
    governance: Option<&governance::Rules>,
) -> Result<Box<dyn Transform>, BuildError> {
    let spec = spec(transform).ok_or_else(|| BuildError::NotAvailable {
        worker: worker.to_string(),
        transform: transform.to_string(),
    })?;
    if !spec.adapters.contains(&adapter) {
        return Err(BuildError::WrongAdapter {
            worker: worker.to_string(),
            transform: transform.to_string(),
            adapter: adapter.to_string(),
            valid: spec.adapters.join(", "),
        });
    }
    let erp = |flows: &'static [Flow]| -> Result<Box<dyn Transform>, BuildError> {
        let profile = crate::adapters::erp::Profile::by_name(adapter).ok_or_else(|| BuildError::NotAvailable {
            worker: worker.to_string(),
            transform: transform.to_string(),
        })?;
        let catalog =
            crate::adapters::erp::Catalog::with(profile, event_types).map_err(|kind| BuildError::UnknownKind {
                worker: worker.to_string(),
                kind,
            })?;
        Ok(Box::new(ErpFlows { catalog, flows }))
    };
    match spec.name {
        "erp_order_events" => erp(&[Flow::Order]),
        "erp_delivery_events" => erp(&[Flow::Delivery]),
        "erp_billing_events" => erp(&[Flow::Billing]),
        "erp_payment_events" => erp(&[Flow::Payment]),
        "erp_events" => erp(Flow::ORDER_TO_CASH),
        "erp_return_events" => erp(&[Flow::Return]),
        "erp_subscription_events" => erp(&[Flow::Subscription]),
        "erp_allocation_events" => erp(&[Flow::Reservation]),
        "order_submission" => Ok(Box::new(order_submission::OrderSubmission)),
        "account_governance" => Ok(Box::new(governance::AccountGovernance {
            rules: governance.cloned().unwrap_or_default(),
        })),
        "return_requests" => Ok(Box::new(returns::ReturnRequests)),
        "opportunity_won" => Ok(Box::new(subscription::OpportunityWon)),
        "part_requests" => Ok(Box::new(parts::PartRequests)),
        "status_gate" => Ok(Box::new(status_gate::StatusGate)),
        _ => Err(BuildError::NotAvailable {
            worker: worker.to_string(),
            transform: transform.to_string(),
        }),
    }
}
/// Lineage of an output derived from `raw`. Each output gets its own idempotency key (source key
/// + record name) so two outputs of one event never share an `event_id`.
pub fn meta(raw: &RawRecord<'_>, source: &Source<'_>, record: &str, now_ms: i64) -> Meta {
    let mut idempotency_key = String::with_capacity(source.idempotency_key.len() + 1 + record.len());
    idempotency_key.push_str(source.idempotency_key);
    idempotency_key.push('#');
    idempotency_key.push_str(record);
    Meta {
        event_id: Meta::event_id_for(&idempotency_key),
        idempotency_key,
        correlation_id: source.correlation_id.to_string(),
        causation_id: source.causation_id.to_string(),
        source_system: source.system.to_string(),
        source_instance: source.instance.to_string(),
        source_topic: raw.topic.to_string(),
        source_partition: raw.partition,
        source_offset: raw.offset,
        occurred_at: source.occurred_at,
        processed_at: now_ms,
    }
}

/// What a transform knows about the source event, for [`meta`].
pub struct Source<'a> {
    pub idempotency_key: &'a str,
    pub correlation_id: &'a str,
    pub causation_id: &'a str,
    pub system: &'a str,
    pub instance: &'a str,
    pub occurred_at: i64,
}

impl<'a> Source<'a> {
    /// A Salesforce event; the org comes from the connector's `sf_org_id` header when it sets one.
    pub fn salesforce(
        raw: &'a RawRecord<'_>,
        idempotency_key: &'a str,
        correlation_id: &'a str,
        causation_id: &'a str,
        occurred_at: i64,
    ) -> Self {
        Self {
            idempotency_key,
            correlation_id,
            causation_id,
            system: "salesforce",
            instance: raw.header_str("sf_org_id").unwrap_or("salesforce"),
            occurred_at,
        }
    }
}
