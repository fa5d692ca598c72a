//! ERP fulfilment and finance documents → `Shipment`, `Invoice` and `PaymentStatus` for
//! Salesforce (the order-to-cash records; `erp` dispatches events to these builders and adds the
//! order status each one implies).
//!
//! Owns: reading documents through the ERP profile's field names, amount checks, and the reverse
//! cross-reference lookups (material → product, customer → account). Must not: decide whether a
//! status is stale (the runtime's status store does).

use serde_json::Value;

use crate::adapters::erp::profile::{Field, LineField};
use crate::adapters::erp::{ErpEvent, ErpEventKind};
use crate::adapters::{RawRecord, json};
use crate::failure::Failure;
use crate::schema::canonical::*;
use crate::schema::decimal::{Money, Quantity};

use super::{Context, Source, currency, meta};

fn money(event: &ErpEvent, f: Field) -> Result<Option<Money>, Failure> {
    event.dec(f, "INVALID_AMOUNT")
}

pub(super) fn known_currency(event: &ErpEvent) -> Result<String, Failure> {
    let c = event.req(Field::Currency)?;
    currency::check(&c)?;
    Ok(c)
}

/// SAP's OverallGoodsMovementStatus `C` means complete; others send a boolean.
fn complete(event: &ErpEvent) -> Result<bool, Failure> {
    let Some(path) = event.field(Field::Complete) else {
        return Ok(true);
    };
    match event.data.value(path).as_deref() {
        None => Ok(true),
        Some(Value::String(s)) if s == "C" => Ok(true),
        Some(Value::String(s)) if s == "A" || s == "B" => Ok(false),
        other => Ok(json::bool_of(other, path)?.unwrap_or(true)),
    }
}

pub(super) fn shipment(
    raw: &RawRecord<'_>,
    event: &ErpEvent,
    source: &Source<'_>,
    ctx: &Context<'_>,
) -> Result<Shipment, Failure> {
    let p = event.profile;
    let mut out = Vec::new();
    for (i, item) in event.lines()?.iter().enumerate() {
        let material = json::req_str(item, p.line_path(LineField::Material))?;
        let quantity: Quantity = json::req_dec(item, p.line_path(LineField::Quantity), "INVALID_QUANTITY")?;
        if quantity.value().is_sign_negative() {
            return Err(Failure::business(
                "INVALID_QUANTITY",
                format!("delivery item {i} has quantity {quantity}"),
            ));
        }
        out.push(ShipmentLine {
            line_number: event.line_number(item, i)?,
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
        erp_order_id: event.opt(Field::ErpOrderId)?,
        erp_instance: event.instance.clone(),
        ship_status: match event.kind {
            ErpEventKind::DeliveryCreated => ShipStatus::Planned,
            ErpEventKind::Delivered => ShipStatus::Delivered,
            _ => ShipStatus::GoodsIssued,
        },
        complete: complete(event)?,
        shipped_at: (event.kind != ErpEventKind::DeliveryCreated).then_some(event.occurred_at),
        carrier: event.opt(Field::Carrier)?,
        tracking_number: event.opt(Field::TrackingNumber)?,
        lines: out,
    })
}

pub(super) fn invoice(
    raw: &RawRecord<'_>,
    event: &ErpEvent,
    source: &Source<'_>,
    ctx: &Context<'_>,
) -> Result<Invoice, Failure> {
    let p = event.profile;
    let currency = known_currency(event)?;
    let tax = money(event, Field::TaxAmount)?.unwrap_or(Money::ZERO);
    let invalid = |e: crate::schema::decimal::DecimalError| Failure::business("INVALID_AMOUNT", e.to_string());
    // Dynamics 365 states totals and tax, not the net amount.
    let (net, gross) = match (money(event, Field::NetAmount)?, money(event, Field::GrossAmount)?) {
        (Some(net), gross) => (net, gross),
        (None, Some(gross)) => (gross.checked_sub(tax).map_err(invalid)?, Some(gross)),
        (None, None) => return Err(Failure::poison("MISSING_FIELD", "the invoice has no net amount")),
    };
    let sum = net.checked_add(tax).map_err(invalid)?;
    let gross = gross.unwrap_or(sum);
    if gross != sum {
        return Err(Failure::business(
            "AMOUNT_MISMATCH",
            format!("gross {gross} is not net {net} + tax {tax}"),
        ));
    }
    let customer = event.req(Field::ErpCustomerId)?;
    let mut out = Vec::new();
    for (i, item) in event.lines()?.iter().enumerate() {
        let material = json::req_str(item, p.line_path(LineField::Material))?;
        out.push(InvoiceLine {
            line_number: event.line_number(item, i)?,
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
        erp_order_id: event.opt(Field::ErpOrderId)?,
        erp_instance: event.instance.clone(),
        salesforce_account_id: ctx.xref.account_by_customer(&customer).map(str::to_string),
        erp_customer_id: customer,
        invoice_date: event
            .date(Field::InvoiceDate)?
            .unwrap_or(event.occurred_at.div_euclid(86_400_000) as i32),
        due_date: event.date(Field::DueDate)?,
        currency,
        net_amount: net,
        tax_amount: tax,
        gross_amount: gross,
        payment_terms: event.opt(Field::PaymentTerms)?,
        lines: out,
    })
}

pub(super) fn payment(
    raw: &RawRecord<'_>,
    event: &ErpEvent,
    source: &Source<'_>,
    ctx: &Context<'_>,
) -> Result<PaymentStatus, Failure> {
    let currency = known_currency(event)?;
    let plan = event.kind == ErpEventKind::BillingPlanCreated;
    let paid = money(event, Field::AmountPaid)?.unwrap_or(Money::ZERO);
    // A new billing plan has nothing paid yet: all of its net amount is open.
    let open = match money(event, Field::AmountOpen)? {
        Some(open) => open,
        None if plan => money(event, Field::NetAmount)?
            .ok_or_else(|| Failure::poison("MISSING_FIELD", "the billing plan has no amount"))?,
        None => Money::ZERO,
    };
    if paid.value().is_sign_negative() || open.value().is_sign_negative() {
        return Err(Failure::business(
            "INVALID_AMOUNT",
            format!("paid {paid} / open {open} must not be negative"),
        ));
    }
    let dunning_level = event.opt_i64(Field::DunningLevel)?.map(|n| n as i32);
    let status = match event.kind {
        ErpEventKind::Dunning => PaymentState::InDunning,
        ErpEventKind::BillingPlanCreated => PaymentState::Open,
        _ if open == Money::ZERO => PaymentState::Paid,
        _ if paid.is_positive() => PaymentState::PartiallyPaid,
        _ => PaymentState::Open,
    };
    Ok(PaymentStatus {
        meta: meta(raw, source, "payment_status", ctx.now_ms),
        payment_id: event.document_id.clone(),
        // Until its first invoice, a billing plan is its own receivable.
        invoice_id: match event.opt(Field::InvoiceId)? {
            Some(invoice) => invoice,
            None if plan => event.document_id.clone(),
            None => event.req(Field::InvoiceId)?,
        },
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
