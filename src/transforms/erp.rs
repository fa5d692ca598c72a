//! ERP business events → the canonical records of each workflow: the dispatcher every ERP-side
//! transform shares.
//!
//! An ERP event belongs to a flow (order, delivery, billing, payment, return, subscription,
//! reservation); a worker handles some flows (`erp_billing_events` one, `erp_events` all of
//! order-to-cash). A few events belong to more than one flow and the worker's flows decide: a
//! credit memo is billing for order-to-cash and the end of a return for the returns worker; a
//! dunning notice is a payment event for orders and for subscriptions alike.
//!
//! Owns: event → flow, the correlation id per flow, and which records (and implied order status)
//! each flow emits. Must not: read vendor field names directly (the profile's `Field`s do).

use crate::adapters::RawRecord;
use crate::adapters::erp::profile::Field;
use crate::adapters::erp::{self, Catalog, ErpEvent, ErpEventKind};
use crate::failure::Failure;
use crate::schema::canonical::*;

use super::order_status::{order_status, salesforce_order_id, status_record};
use super::{Context, Emitted, Source, Transform, Transformed, order_to_cash, parts, returns};

/// The document flows of the ERP side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Order,
    Delivery,
    Billing,
    Payment,
    Return,
    Subscription,
    Reservation,
}

impl Flow {
    /// Order-to-cash: what an ERP that publishes everything on one topic sends (`erp_events`).
    pub const ORDER_TO_CASH: &'static [Flow] = &[Flow::Order, Flow::Delivery, Flow::Billing, Flow::Payment];
    /// Every flow (the fuzz target reads every event type of a profile).
    pub const ALL_FLOWS: &'static [Flow] = &[
        Flow::Order,
        Flow::Delivery,
        Flow::Billing,
        Flow::Payment,
        Flow::Return,
        Flow::Subscription,
        Flow::Reservation,
    ];

    /// The flows an event may belong to, in order of preference.
    fn candidates(kind: ErpEventKind) -> &'static [Flow] {
        use ErpEventKind::*;
        match kind {
            OrderCreated | OrderChanged | OrderAccepted | OrderRejected | OrderCreditHold | OrderCreditReleased
            | OrderCancelled => &[Flow::Order],
            DeliveryCreated | GoodsIssued | Delivered => &[Flow::Delivery],
            InvoicePosted => &[Flow::Billing],
            CreditMemoPosted => &[Flow::Billing, Flow::Return],
            PaymentPosted | Dunning => &[Flow::Payment, Flow::Subscription],
            BillingPlanCreated => &[Flow::Subscription],
            ReturnAuthorized | ReturnRejected | ReturnGoodsReceived => &[Flow::Return],
            PartAllocated | PartBackOrdered | PartRejected => &[Flow::Reservation],
        }
    }
}

/// One ERP profile's events for some flows.
pub struct ErpFlows {
    pub catalog: Catalog,
    pub flows: &'static [Flow],
}

impl Transform for ErpFlows {
    fn apply(&self, raw: &RawRecord<'_>, ctx: &Context<'_>) -> Result<Transformed, Failure> {
        let event = erp::parse(raw, &self.catalog)?;
        let candidates = Flow::candidates(event.kind);
        let Some(flow) = candidates.iter().copied().find(|f| self.flows.contains(f)) else {
            return Err(Failure::business(
                "UNKNOWN_EVENT_TYPE",
                format!(
                    "`{}` belongs to the {:?} flow, which this worker does not handle",
                    event.event_type, candidates[0]
                ),
            ));
        };
        let correlation_id = correlation(&event, flow)?;
        let key = event.idempotency_key();
        let source = Source {
            idempotency_key: &key,
            correlation_id: &correlation_id,
            causation_id: &event.event_id,
            system: self.catalog.profile.source_system,
            instance: &event.instance,
            occurred_at: event.occurred_at,
        };
        let mut outputs = Vec::with_capacity(2);
        let mut emit = |output: &'static str, record: CanonicalRecord| outputs.push(Emitted { output, record });
        let status = match flow {
            Flow::Order => order_status(&event)?,
            Flow::Delivery => {
                let shipment = order_to_cash::shipment(raw, &event, &source, ctx)?;
                let status = match event.kind {
                    ErpEventKind::DeliveryCreated => None,
                    _ if shipment.complete => Some(OrderStatusCode::Shipped),
                    _ => Some(OrderStatusCode::PartiallyShipped),
                };
                emit("shipment", CanonicalRecord::Shipment(shipment));
                status
            }
            Flow::Billing => {
                let invoice = order_to_cash::invoice(raw, &event, &source, ctx)?;
                let status =
                    (invoice.document_type == BillingDocumentType::Invoice).then_some(OrderStatusCode::Invoiced);
                emit("invoice", CanonicalRecord::Invoice(invoice));
                status
            }
            Flow::Payment => {
                let payment = order_to_cash::payment(raw, &event, &source, ctx)?;
                let status = (payment.status == PaymentState::Paid).then_some(OrderStatusCode::Paid);
                emit("payment", CanonicalRecord::PaymentStatus(payment));
                status
            }
            // A subscription has no order status: its payments speak for themselves.
            Flow::Subscription => {
                let payment = order_to_cash::payment(raw, &event, &source, ctx)?;
                emit("payment", CanonicalRecord::PaymentStatus(payment));
                None
            }
            Flow::Return => {
                if event.kind == ErpEventKind::CreditMemoPosted {
                    let credit = order_to_cash::invoice(raw, &event, &source, ctx)?;
                    emit("invoice", CanonicalRecord::Invoice(credit));
                }
                let ret = returns::erp_status(raw, &event, &source, ctx)?;
                emit("return_authorization", CanonicalRecord::ReturnAuthorization(ret));
                None
            }
            Flow::Reservation => {
                let r = parts::erp_result(raw, &event, &source, ctx)?;
                emit("part_reservation", CanonicalRecord::PartReservation(r));
                None
            }
        };
        if let Some(status) = status {
            emit(
                "order_status",
                CanonicalRecord::OrderStatus(status_record(raw, &event, status, &source, ctx.now_ms)?),
            );
        }
        Ok(Transformed {
            idempotency_key: key.clone(),
            correlation_id,
            outputs,
            writes: vec![],
            remember: true,
        })
    }
}

/// The business transaction an event belongs to: the Salesforce order (returns too: a return is
/// part of its order's story), the Opportunity of a subscription, or the part request.
fn correlation(event: &ErpEvent, flow: Flow) -> Result<String, Failure> {
    match flow {
        Flow::Reservation => event.opt(Field::SalesforceReservationId)?.ok_or_else(|| {
            Failure::business(
                "MISSING_RESERVATION_REFERENCE",
                format!(
                    "reservation {} carries no Salesforce request id (`{}`)",
                    event.document_id,
                    event.field(Field::SalesforceReservationId).unwrap_or("?")
                ),
            )
        }),
        _ => salesforce_order_id(event),
    }
}
