//! ERP events → `OrderStatus` for Salesforce: which event means which status, and the status
//! record every ERP flow emits.
//!
//! Owns: the event → status table and the status record's fields. Must not: decide whether a
//! status is stale (the runtime's status store does, with state).

use crate::adapters::RawRecord;
use crate::adapters::erp::profile::Field;
use crate::adapters::erp::{ErpEvent, ErpEventKind};
use crate::failure::Failure;
use crate::schema::canonical::{OrderStatus, OrderStatusCode};

use super::{Source, meta};

/// The status an ERP event reports, if it reports one.
pub fn status_of(kind: ErpEventKind) -> Option<OrderStatusCode> {
    use ErpEventKind::*;
    Some(match kind {
        OrderCreated | OrderChanged | OrderAccepted | OrderCreditReleased => OrderStatusCode::Accepted,
        OrderRejected => OrderStatusCode::Rejected,
        OrderCreditHold => OrderStatusCode::CreditHold,
        OrderCancelled => OrderStatusCode::Cancelled,
        GoodsIssued | Delivered => OrderStatusCode::Shipped,
        InvoicePosted => OrderStatusCode::Invoiced,
        PaymentPosted => OrderStatusCode::Paid,
        DeliveryCreated | CreditMemoPosted | Dunning | ReturnAuthorized | ReturnRejected | ReturnGoodsReceived
        | BillingPlanCreated | PartAllocated | PartBackOrdered | PartRejected => return None,
    })
}

/// The status an order event reports. A change reports the order's state: all items rejected
/// (rejection status `C`), else credit blocked (credit status `B`), else accepted (a released
/// block is accepted again: both rank alike, the later wins).
pub fn order_status(event: &ErpEvent) -> Result<Option<OrderStatusCode>, Failure> {
    if event.kind != ErpEventKind::OrderChanged {
        return Ok(status_of(event.kind));
    }
    if event.opt(Field::RejectionStatus)?.as_deref() == Some("C") {
        return Ok(Some(OrderStatusCode::Rejected));
    }
    if event.opt(Field::CreditStatus)?.as_deref() == Some("B") {
        return Ok(Some(OrderStatusCode::CreditHold));
    }
    Ok(Some(OrderStatusCode::Accepted))
}

/// Builds the status record for `event` (shared by the delivery, billing and payment flows).
pub fn status_record(
    raw: &RawRecord<'_>,
    event: &ErpEvent,
    status: OrderStatusCode,
    source: &Source<'_>,
    now_ms: i64,
) -> Result<OrderStatus, Failure> {
    let erp_order_id = match event.kind {
        ErpEventKind::OrderCreated
        | ErpEventKind::OrderChanged
        | ErpEventKind::OrderAccepted
        | ErpEventKind::OrderRejected
        | ErpEventKind::OrderCreditHold
        | ErpEventKind::OrderCreditReleased
        | ErpEventKind::OrderCancelled => Some(event.document_id.clone()),
        _ => event.opt(Field::ErpOrderId)?,
    };
    let expected_delivery_date = event.date(Field::ExpectedDeliveryDate)?;
    Ok(OrderStatus {
        meta: meta(raw, source, "order_status", now_ms),
        order_id: source.correlation_id.to_string(),
        erp_order_id,
        erp_instance: event.instance.clone(),
        status,
        status_at: event.occurred_at,
        reason: event.opt(Field::Reason)?,
        hold_reason: if status == OrderStatusCode::CreditHold {
            event.opt(Field::HoldReason)?
        } else {
            None
        },
        expected_delivery_date,
    })
}

/// The Salesforce order id an ERP event refers to; without it nothing can be correlated.
pub fn salesforce_order_id(event: &ErpEvent) -> Result<String, Failure> {
    let path = event.field(Field::SalesforceOrderId).unwrap_or("salesforce_order_id");
    event.data.text(path)?.ok_or_else(|| {
        Failure::business(
            "MISSING_ORDER_REFERENCE",
            format!(
                "{} event {} carries no Salesforce order reference (`{path}`)",
                event.event_type, event.document_id
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::erp::Catalog;
    use crate::adapters::erp::profile::GENERIC;
    use crate::schema::canonical::CanonicalRecord;
    use crate::transforms::erp::{ErpFlows, Flow};
    use crate::transforms::{Context, Transform};

    fn ctx(now_ms: i64) -> Context<'static> {
        static EMPTY: std::sync::OnceLock<crate::xref::XrefTable> = std::sync::OnceLock::new();
        Context {
            now_ms,
            xref: EMPTY.get_or_init(Default::default),
        }
    }

    fn raw(payload: &[u8]) -> RawRecord<'_> {
        RawRecord {
            topic: "erp.sales-order.events",
            partition: 1,
            offset: 7,
            key: Some(b"801A"),
            payload: Some(payload),
            headers: &[],
            timestamp_ms: None,
        }
    }

    #[test]
    fn generic_credit_hold_becomes_order_status() {
        let payload = br#"{"specversion":"1.0","id":"e-1","source":"/erp/erp-na","type":"io.syncline.erp.salesorder.credit_hold",
            "time":"2025-11-26T10:00:00Z","data":{"salesforce_order_id":"801A","erp_order_id":"5000012","hold_reason":"limit exceeded","expected_delivery_date":"2025-12-01"}}"#;
        let t = ErpFlows {
            catalog: Catalog::of(&GENERIC),
            flows: &[Flow::Order],
        }
        .apply(&raw(payload), &ctx(5))
        .unwrap();
        assert_eq!(t.correlation_id, "801A");
        assert_eq!(
            t.idempotency_key,
            "generic_erp:erp-na:5000012:io.syncline.erp.salesorder.credit_hold:1764151200000"
        );
        let CanonicalRecord::OrderStatus(s) = &t.outputs[0].record else {
            panic!()
        };
        assert_eq!(s.status, OrderStatusCode::CreditHold);
        assert_eq!(s.hold_reason.as_deref(), Some("limit exceeded"));
        assert_eq!(s.erp_order_id.as_deref(), Some("5000012"));
        assert_eq!(s.erp_instance, "erp-na");
        assert_eq!(
            (
                s.meta.source_topic.as_str(),
                s.meta.source_partition,
                s.meta.source_offset
            ),
            ("erp.sales-order.events", 1, 7)
        );
        assert_eq!(s.meta.processed_at, 5);
    }

    #[test]
    fn wrong_events_fail_with_codes() {
        let t = ErpFlows {
            catalog: Catalog::of(&GENERIC),
            flows: &[Flow::Order],
        };
        let unknown = br#"{"specversion":"1.0","id":"e","source":"/erp/x","type":"io.syncline.erp.salesorder.teleported","time":"2025-11-26T10:00:00Z","data":{}}"#;
        assert_eq!(t.apply(&raw(unknown), &ctx(0)).unwrap_err().code, "UNKNOWN_EVENT_TYPE");
        let no_ref = br#"{"specversion":"1.0","id":"e","source":"/erp/x","type":"io.syncline.erp.salesorder.accepted","time":"2025-11-26T10:00:00Z","data":{"erp_order_id":"1"}}"#;
        assert_eq!(
            t.apply(&raw(no_ref), &ctx(0)).unwrap_err().code,
            "MISSING_ORDER_REFERENCE"
        );
        assert_eq!(t.apply(&raw(b"not json"), &ctx(0)).unwrap_err().code, "INVALID_JSON");
    }
}
