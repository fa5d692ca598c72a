//! Service and returns: a Salesforce return request → `ReturnAuthorization` (REQUESTED) for the
//! ERP; the ERP's RMA events → `ReturnAuthorization` status for Salesforce (AUTHORIZED, REJECTED,
//! GOODS_RECEIVED, and CREDITED with the credit memo, which is an `Invoice` of type
//! CREDIT_MEMO: see `erp`).
//!
//! Accepted Salesforce inputs: the `Return_Requested__e` platform event, and Case change events
//! once the case reaches status `Return Requested`. Change events carry only changed fields, so
//! the Case channel must be enriched with `CaseNumber`, `AccountId`, `Type`, `Order__c`,
//! `Invoice_Id__c` and `Lines__c` (Salesforce CDC enrichment). Lines are JSON in `Lines__c`:
//! `[{"Product2Id", "Quantity", "UnitOfMeasure"?, "OrderLineNumber"?, "ReasonCode"?}]`.
//!
//! Owns: the return's fields on both sides and its correlation with the original order
//! (`order_id`, the correlation id of every return record) and invoice (`original_invoice_id`).
//! Must not: order statuses (a return does not move the order backwards).

use crate::adapters::erp::profile::{Field, LineField};
use crate::adapters::erp::{ErpEvent, ErpEventKind};
use crate::adapters::salesforce::SfEvent;
use crate::adapters::{RawRecord, json};
use crate::failure::Failure;
use crate::schema::canonical::{CanonicalRecord, ReturnAuthorization, ReturnLine, ReturnStatus};
use crate::schema::decimal::Quantity;
use crate::xref::XrefLookup;

use super::{Context, SalesforceInput, Source, Transform, Transformed, master_data, meta};

/// The Case status that asks the ERP for an RMA.
pub const CASE_STATUS_REQUESTED: &str = "Return Requested";

pub struct ReturnRequests;

/// Field names in the platform event and in the (enriched) Case change event.
struct Names {
    case_number: &'static str,
    order: &'static str,
    invoice: &'static str,
    account: &'static str,
    reason: &'static str,
}

const PLATFORM_EVENT: Names = Names {
    case_number: "Case_Number__c",
    order: "Order_Id__c",
    invoice: "Invoice_Id__c",
    account: "Account_Id__c",
    reason: "Reason__c",
};

const CASE_CHANGE: Names = Names {
    case_number: "CaseNumber",
    order: "Order__c",
    invoice: "Invoice_Id__c",
    account: "AccountId",
    reason: "Reason",
};

impl Transform for ReturnRequests {
    fn apply(&self, raw: &RawRecord<'_>, ctx: &Context<'_>) -> Result<Transformed, Failure> {
        let input = SalesforceInput::read(raw, "Case", "Case_Id__c", "return requests")?;
        let event = &input.event;
        let names = if input.is_change { &CASE_CHANGE } else { &PLATFORM_EVENT };
        let order_id = event.required(names.order)?;
        // A Case change that does not request a return is not for the ERP: nothing to emit.
        if input.is_change {
            let is_return = event.text("Type")?.is_none_or(|t| t == "Return");
            if !is_return || event.text("Status")?.as_deref() != Some(CASE_STATUS_REQUESTED) {
                return Ok(Transformed::nothing(input.idempotency_key, order_id));
            }
        }
        let customer = master_data::customer(ctx.xref, &event.required(names.account)?)?;
        let record = ReturnAuthorization {
            meta: meta(raw, &input.source(raw, &order_id), "return_authorization", ctx.now_ms),
            rma_id: event
                .text(names.case_number)?
                .unwrap_or_else(|| input.record_id.clone()),
            case_id: input.record_id.clone(),
            order_id: order_id.clone(),
            original_invoice_id: event.text(names.invoice)?,
            erp_instance: customer.erp_instance.map(str::to_string),
            status: ReturnStatus::Requested,
            status_at: event.occurred_at,
            reason: event.text(names.reason)?,
            lines: request_lines(event, ctx.xref)?,
        };
        Ok(Transformed::one(
            input.idempotency_key.clone(),
            order_id,
            "return_authorization",
            CanonicalRecord::ReturnAuthorization(record),
        ))
    }
}

fn positive(qty: Quantity, at: &str) -> Result<Quantity, Failure> {
    if qty.is_positive() {
        Ok(qty)
    } else {
        Err(Failure::business(
            "INVALID_QUANTITY",
            format!("{at} is {qty}; returned quantities must be positive"),
        ))
    }
}

fn request_lines(e: &SfEvent, xref: &dyn XrefLookup) -> Result<Vec<ReturnLine>, Failure> {
    let items = e.array("Lines__c")?.unwrap_or_default();
    if items.is_empty() {
        return Err(Failure::business(
            "INVALID_RETURN_LINES",
            "the return request has no lines (`Lines__c`)",
        ));
    }
    let mut lines = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let li = master_data::line_item(xref, item, i)?;
        lines.push(ReturnLine {
            line_number: json::opt_i64(item, "LineNumber")?.map_or(i as i32 + 1, |n| n as i32),
            order_line_number: json::opt_i64(item, "OrderLineNumber")?.map(|n| n as i32),
            salesforce_product_id: Some(li.product),
            erp_material_id: Some(li.material),
            quantity: li.quantity,
            unit_of_measure: li.unit,
            reason_code: json::opt_str(item, "ReasonCode")?,
        });
    }
    Ok(lines)
}

/// The return status an ERP event reports (the credit memo of a return included).
pub(super) fn erp_status(
    raw: &RawRecord<'_>,
    event: &ErpEvent,
    source: &Source<'_>,
    ctx: &Context<'_>,
) -> Result<ReturnAuthorization, Failure> {
    let status = match event.kind {
        ErpEventKind::ReturnAuthorized => ReturnStatus::Authorized,
        ErpEventKind::ReturnRejected => ReturnStatus::Rejected,
        ErpEventKind::ReturnGoodsReceived => ReturnStatus::GoodsReceived,
        ErpEventKind::CreditMemoPosted => ReturnStatus::Credited,
        other => {
            return Err(Failure::business(
                "UNKNOWN_EVENT_TYPE",
                format!("{other:?} is not a return event"),
            ));
        }
    };
    let case_id = event.opt(Field::SalesforceCaseId)?.ok_or_else(|| {
        Failure::business(
            "MISSING_CASE_REFERENCE",
            format!(
                "{} event {} carries no Salesforce Case id (`{}`)",
                event.event_type,
                event.document_id,
                event.field(Field::SalesforceCaseId).unwrap_or("?")
            ),
        )
    })?;
    let p = event.profile;
    let mut lines = Vec::new();
    for (i, item) in event.lines()?.iter().enumerate() {
        let material = json::req_str(item, p.line_path(LineField::Material))?;
        let at = format!("item {i} quantity");
        lines.push(ReturnLine {
            line_number: event.line_number(item, i)?,
            order_line_number: json::opt_i64(item, p.line_path(LineField::OrderLine))?.map(|n| n as i32),
            salesforce_product_id: ctx.xref.product_by_material(&material).map(str::to_string),
            erp_material_id: Some(material),
            quantity: positive(
                json::req_dec(item, p.line_path(LineField::Quantity), "INVALID_QUANTITY")?,
                &at,
            )?,
            unit_of_measure: json::opt_str(item, p.line_path(LineField::Unit))?.unwrap_or_default(),
            reason_code: json::opt_str(item, p.line_path(LineField::ReasonCode))?,
        });
    }
    Ok(ReturnAuthorization {
        meta: meta(raw, source, "return_authorization", ctx.now_ms),
        rma_id: event.req(Field::ReturnId)?,
        case_id,
        order_id: source.correlation_id.to_string(),
        original_invoice_id: event.opt(Field::OriginalInvoiceId)?,
        erp_instance: Some(event.instance.clone()),
        status,
        status_at: event.occurred_at,
        reason: event.opt(Field::Reason)?,
        lines,
    })
}
