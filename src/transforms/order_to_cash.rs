//! ERP order, fulfilment and finance events → `OrderStatus`, `Shipment`, `Invoice`,
//! `PaymentStatus` for Salesforce, each document with the status it implies (ACCEPTED ...,
//! SHIPPED / PARTIALLY_SHIPPED, INVOICED, PAID).
//!
//! Owns: reading documents through the ERP profile's field names, amount checks, and the reverse
//! cross-reference lookups (material → product, customer → account). Must not: decide whether a
//! status is stale (the runtime's status store does).

use serde_json::Value;

use crate::adapters::erp::profile::{Field, LineField};
use crate::adapters::erp::{self, ErpEvent, ErpEventKind, Profile};
use crate::adapters::{RawRecord, json};
use crate::failure::Failure;
use crate::schema::canonical::*;
use crate::schema::decimal::{Money, Quantity};

use super::order_status::{salesforce_order_id, status_of, status_record};
use super::{Context, Emitted, Source, Transform, Transformed, currency, meta};

/// The document flows of order-to-cash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Order,
    Delivery,
    Billing,
    Payment,
}

impl Flow {
    pub const ALL: &'static [Flow] = &[Flow::Order, Flow::Delivery, Flow::Billing, Flow::Payment];

    fn of(kind: ErpEventKind) -> Flow {
        use ErpEventKind::*;
        match kind {
            OrderCreated | OrderAccepted | OrderRejected | OrderCreditHold | OrderCreditReleased | OrderCancelled => {
                Flow::Order
            }
            DeliveryCreated | GoodsIssued | Delivered => Flow::Delivery,
            InvoicePosted | CreditMemoPosted => Flow::Billing,
            PaymentPosted | Dunning => Flow::Payment,
        }
    }
}

/// One ERP profile's events for some flows (one flow per worker, or all of them for an ERP that
/// publishes every business event on one topic).
pub struct OrderToCash {
    pub profile: &'static Profile,
    pub flows: &'static [Flow],
}

impl Transform for OrderToCash {
    fn apply(&self, raw: &RawRecord<'_>, ctx: &Context<'_>) -> Result<Transformed, Failure> {
        let event = erp::parse(raw, self.profile)?;
        let flow = Flow::of(event.kind);
        if !self.flows.contains(&flow) {
            return Err(Failure::business(
                "UNKNOWN_EVENT_TYPE",
                format!(
                    "`{}` belongs to the {flow:?} flow, which this worker does not handle",
                    event.event_type
                ),
            ));
        }
        let order_id = salesforce_order_id(&event)?;
        let key = event.idempotency_key();
        let source = Source {
            idempotency_key: &key,
            correlation_id: &order_id,
            causation_id: &event.event_id,
            system: self.profile.source_system,
            instance: &event.instance,
            occurred_at: event.occurred_at,
        };
        let mut outputs = Vec::with_capacity(2);
        let status = match flow {
            Flow::Order => status_of(event.kind),
            Flow::Delivery => {
                let shipment = shipment(raw, &event, &source, ctx)?;
                let status = match event.kind {
                    ErpEventKind::DeliveryCreated => None,
                    _ if shipment.complete => Some(OrderStatusCode::Shipped),
                    _ => Some(OrderStatusCode::PartiallyShipped),
                };
                outputs.push(Emitted {
                    output: "shipment",
                    record: CanonicalRecord::Shipment(shipment),
                });
                status
            }
            Flow::Billing => {
                let invoice = invoice(raw, &event, &source, ctx)?;
                let status =
                    (invoice.document_type == BillingDocumentType::Invoice).then_some(OrderStatusCode::Invoiced);
                outputs.push(Emitted {
                    output: "invoice",
                    record: CanonicalRecord::Invoice(invoice),
                });
                status
            }
            Flow::Payment => {
                let payment = payment(raw, &event, &source, ctx)?;
                let status = (payment.status == PaymentState::Paid).then_some(OrderStatusCode::Paid);
                outputs.push(Emitted {
                    output: "payment",
                    record: CanonicalRecord::PaymentStatus(payment),
                });
                status
            }
        };
        if let Some(status) = status {
            outputs.push(Emitted {
                output: "order_status",
                record: CanonicalRecord::OrderStatus(status_record(raw, &event, status, &source, ctx.now_ms)?),
            });
        }
        Ok(Transformed {
            idempotency_key: key.clone(),
            correlation_id: order_id,
            outputs,
        })
    }
}

fn opt(event: &ErpEvent, f: Field) -> Result<Option<String>, Failure> {
    match event.field(f) {
        Some(path) => json::opt_str(&event.data, path),
        None => Ok(None),
    }
}

fn req(event: &ErpEvent, f: Field) -> Result<String, Failure> {
    let path = event.field(f).unwrap_or("?");
    opt(event, f)?.ok_or_else(|| Failure::poison("MISSING_FIELD", format!("required field `{path}` is missing")))
}

fn money(event: &ErpEvent, f: Field) -> Result<Option<Money>, Failure> {
    match event.field(f) {
        Some(path) => json::opt_dec(&event.data, path, "INVALID_AMOUNT"),
        None => Ok(None),
    }
}

fn date(event: &ErpEvent, f: Field) -> Result<Option<i32>, Failure> {
    match event.field(f) {
        Some(path) => json::opt_date(&event.data, path),
        None => Ok(None),
    }
}

fn known_currency(event: &ErpEvent) -> Result<String, Failure> {
    let c = req(event, Field::Currency)?;
    if currency::is_known(&c) {
        Ok(c)
    } else {
        Err(Failure::business(
            "UNKNOWN_CURRENCY",
            format!("`{c}` is not an ISO 4217 currency code"),
        ))
    }
}

fn lines(event: &ErpEvent) -> Result<Vec<Value>, Failure> {
    match event.field(Field::Lines).and_then(|p| json::get(&event.data, p)) {
        None => Ok(vec![]),
        Some(Value::Array(items)) => Ok(items.clone()),
        Some(_) => Err(Failure::poison("WRONG_TYPE", "document lines must be an array")),
    }
}

fn line_number(item: &Value, profile: &Profile, index: usize) -> Result<i32, Failure> {
    Ok(json::opt_i64(item, profile.line_path(LineField::LineNumber))?
        .map(|n| n as i32)
        .unwrap_or(index as i32 + 1))
}

/// SAP's OverallGoodsMovementStatus `C` means complete; others send a boolean.
fn complete(event: &ErpEvent) -> Result<bool, Failure> {
    let Some(path) = event.field(Field::Complete) else {
        return Ok(true);
    };
    match json::get(&event.data, path) {
        None => Ok(true),
        Some(Value::String(s)) if s == "C" => Ok(true),
        Some(Value::String(s)) if s == "A" || s == "B" => Ok(false),
        Some(_) => Ok(json::opt_bool(&event.data, path)?.unwrap_or(true)),
    }
}

fn shipment(
    raw: &RawRecord<'_>,
    event: &ErpEvent,
    source: &Source<'_>,
    ctx: &Context<'_>,
) -> Result<Shipment, Failure> {
    let p = event.profile;
    let mut out = Vec::new();
    for (i, item) in lines(event)?.iter().enumerate() {
        let material = json::req_str(item, p.line_path(LineField::Material))?;
        let quantity: Quantity = json::req_dec(item, p.line_path(LineField::Quantity), "INVALID_QUANTITY")?;
        if quantity.value().is_sign_negative() {
            return Err(Failure::business(
                "INVALID_QUANTITY",
                format!("delivery item {i} has quantity {quantity}"),
            ));
        }
        out.push(ShipmentLine {
            line_number: line_number(item, p, i)?,
            order_line_number: json::opt_i64(item, p.line_path(LineField::OrderLine))?.map(|n| n as i32),
            salesforce_product_id: ctx.xref.product_by_material(&material).map(str::to_string),
            erp_material_id: material,
            quantity,
            unit_of_measure: json::opt_str(item, p.line_path(LineField::Unit))?.unwrap_or_default(),
        });
    }
    Ok(Shipment {
        meta: meta(raw, source, "shipment", ctx.now_ms),
        shipment_id: event.document_id.clone(),
        order_id: source.correlation_id.to_string(),
        erp_order_id: opt(event, Field::ErpOrderId)?,
        erp_instance: event.instance.clone(),
        ship_status: match event.kind {
            ErpEventKind::DeliveryCreated => ShipStatus::Planned,
            ErpEventKind::Delivered => ShipStatus::Delivered,
            _ => ShipStatus::GoodsIssued,
        },
        complete: complete(event)?,
        shipped_at: (event.kind != ErpEventKind::DeliveryCreated).then_some(event.occurred_at),
        carrier: opt(event, Field::Carrier)?,
        tracking_number: opt(event, Field::TrackingNumber)?,
        lines: out,
    })
}

fn invoice(raw: &RawRecord<'_>, event: &ErpEvent, source: &Source<'_>, ctx: &Context<'_>) -> Result<Invoice, Failure> {
    let p = event.profile;
    let currency = known_currency(event)?;
    let net = money(event, Field::NetAmount)?
        .ok_or_else(|| Failure::poison("MISSING_FIELD", "the invoice has no net amount"))?;
    let tax = money(event, Field::TaxAmount)?.unwrap_or(Money::ZERO);
    let sum = net
        .checked_add(tax)
        .map_err(|e| Failure::business("INVALID_AMOUNT", e.to_string()))?;
    let gross = money(event, Field::GrossAmount)?.unwrap_or(sum);
    if gross != sum {
        return Err(Failure::business(
            "AMOUNT_MISMATCH",
            format!("gross {gross} is not net {net} + tax {tax}"),
        ));
    }
    let customer = req(event, Field::ErpCustomerId)?;
    let mut out = Vec::new();
    for (i, item) in lines(event)?.iter().enumerate() {
        let material = json::req_str(item, p.line_path(LineField::Material))?;
        out.push(InvoiceLine {
            line_number: line_number(item, p, i)?,
            salesforce_product_id: ctx.xref.product_by_material(&material).map(str::to_string),
            erp_material_id: material,
            description: json::opt_str(item, p.line_path(LineField::Description))?,
            quantity: json::req_dec(item, p.line_path(LineField::Quantity), "INVALID_QUANTITY")?,
            unit_of_measure: json::opt_str(item, p.line_path(LineField::Unit))?.unwrap_or_default(),
            net_amount: json::req_dec(item, p.line_path(LineField::NetAmount), "INVALID_AMOUNT")?,
        });
    }
    Ok(Invoice {
        meta: meta(raw, source, "invoice", ctx.now_ms),
        invoice_id: event.document_id.clone(),
        document_type: if event.kind == ErpEventKind::CreditMemoPosted {
            BillingDocumentType::CreditMemo
        } else {
            BillingDocumentType::Invoice
        },
        order_id: source.correlation_id.to_string(),
        erp_order_id: opt(event, Field::ErpOrderId)?,
        erp_instance: event.instance.clone(),
        salesforce_account_id: ctx.xref.account_by_customer(&customer).map(str::to_string),
        erp_customer_id: customer,
        invoice_date: date(event, Field::InvoiceDate)?.unwrap_or(event.occurred_at.div_euclid(86_400_000) as i32),
        due_date: date(event, Field::DueDate)?,
        currency,
        net_amount: net,
        tax_amount: tax,
        gross_amount: gross,
        payment_terms: opt(event, Field::PaymentTerms)?,
        lines: out,
    })
}

fn payment(
    raw: &RawRecord<'_>,
    event: &ErpEvent,
    source: &Source<'_>,
    ctx: &Context<'_>,
) -> Result<PaymentStatus, Failure> {
    let currency = known_currency(event)?;
    let paid = money(event, Field::AmountPaid)?.unwrap_or(Money::ZERO);
    let open = money(event, Field::AmountOpen)?.unwrap_or(Money::ZERO);
    if paid.value().is_sign_negative() || open.value().is_sign_negative() {
        return Err(Failure::business(
            "INVALID_AMOUNT",
            format!("paid {paid} / open {open} must not be negative"),
        ));
    }
    let dunning_level = match event.field(Field::DunningLevel) {
        Some(path) => json::opt_i64(&event.data, path)?.map(|n| n as i32),
        None => None,
    };
    let status = match event.kind {
        ErpEventKind::Dunning => PaymentState::InDunning,
        _ if open == Money::ZERO => PaymentState::Paid,
        _ if paid.is_positive() => PaymentState::PartiallyPaid,
        _ => PaymentState::Open,
    };
    Ok(PaymentStatus {
        meta: meta(raw, source, "payment_status", ctx.now_ms),
        payment_id: event.document_id.clone(),
        invoice_id: req(event, Field::InvoiceId)?,
        order_id: source.correlation_id.to_string(),
        erp_instance: event.instance.clone(),
        status,
        currency,
        amount_paid: paid,
        amount_open: open,
        paid_at: (event.kind == ErpEventKind::PaymentPosted).then_some(event.occurred_at),
        // From the second dunning level on, collection is at risk: sales should know.
        collection_risk: status == PaymentState::InDunning && dunning_level.unwrap_or(0) >= 2,
        dunning_level,
    })
}
