//! Field-service parts: a Salesforce part reservation request → `PartReservation` (REQUESTED,
//! the allocation request for the ERP); the ERP's allocation result → `PartReservation`
//! ALLOCATED, BACK_ORDERED (with the expected replenishment date) or REJECTED for Salesforce.
//!
//! Accepted Salesforce inputs: the `Part_Reservation_Requested__e` platform event, and
//! ProductRequestLineItem change events (CREATE requests; an update to status `Cancelled`
//! cancels). The change channel must be enriched with `Product2Id`, `QuantityRequested`,
//! `QuantityUnitOfMeasure`, `WorkOrderId` and `ERP_Plant__c`.
//!
//! Owns: the reservation's fields on both sides; its correlation id is the Salesforce request
//! (line item) id, which the ERP echoes. Must not: decide staleness (the status ledger ranks
//! BACK_ORDERED and ALLOCATED alike so the later ERP decision wins).

use crate::adapters::erp::profile::Field;
use crate::adapters::erp::{ErpEvent, ErpEventKind};
use crate::adapters::{RawRecord, json};
use crate::failure::Failure;
use crate::schema::canonical::{CanonicalRecord, PartReservation, ReservationStatus};
use crate::schema::decimal::Quantity;

use super::{Context, SalesforceInput, Source, Transform, Transformed, master_data, meta};

pub struct PartRequests;

struct Names {
    work_order: &'static str,
    product: &'static str,
    quantity: &'static str,
    unit: &'static str,
    plant: &'static str,
}

const PLATFORM_EVENT: Names = Names {
    work_order: "Work_Order_Id__c",
    product: "Product_Id__c",
    quantity: "Quantity__c",
    unit: "Unit__c",
    plant: "Plant__c",
};

const LINE_ITEM_CHANGE: Names = Names {
    work_order: "WorkOrderId",
    product: "Product2Id",
    quantity: "QuantityRequested",
    unit: "QuantityUnitOfMeasure",
    plant: "ERP_Plant__c",
};

impl Transform for PartRequests {
    fn apply(&self, raw: &RawRecord<'_>, ctx: &Context<'_>) -> Result<Transformed, Failure> {
        let input = SalesforceInput::read(
            raw,
            "ProductRequestLineItem",
            "Reservation_Id__c",
            "part reservation requests",
        )?;
        let event = &input.event;
        let (names, status) = match &event.change {
            Some(h) => (
                &LINE_ITEM_CHANGE,
                match h.change_type.as_str() {
                    "CREATE" => Some(ReservationStatus::Requested),
                    "UPDATE" if event.text("Status")?.as_deref() == Some("Cancelled") => {
                        Some(ReservationStatus::Cancelled)
                    }
                    _ => None,
                },
            ),
            None => (&PLATFORM_EVENT, Some(ReservationStatus::Requested)),
        };
        let reservation_id = input.record_id.clone();
        // Other line item changes (notes, dates) are Salesforce's own business.
        let Some(status) = status else {
            return Ok(Transformed::nothing(input.idempotency_key, reservation_id));
        };
        let product = event.required(names.product)?;
        let requested: Quantity = event
            .dec(names.quantity, "INVALID_QUANTITY")?
            .ok_or_else(|| json::missing(names.quantity))?;
        if !requested.is_positive() {
            return Err(Failure::business(
                "INVALID_QUANTITY",
                format!(
                    "{} is {requested}; a reservation needs a positive quantity",
                    names.quantity
                ),
            ));
        }
        let (material, material_unit) = master_data::material(ctx.xref, &product)?;
        let sf_unit = event.text(names.unit)?;
        let (quantity, unit, _) = master_data::in_erp_unit(ctx.xref, requested, sf_unit.as_deref(), material_unit)?;
        let record = PartReservation {
            meta: meta(raw, &input.source(raw, &reservation_id), "part_reservation", ctx.now_ms),
            reservation_id: reservation_id.clone(),
            work_order_id: event.text(names.work_order)?,
            salesforce_product_id: product,
            erp_material_id: Some(material.to_string()),
            quantity,
            unit_of_measure: unit,
            plant: event.text(names.plant)?,
            status,
            status_at: event.occurred_at,
            allocated_quantity: None,
            expected_replenishment_date: None,
            reason: None,
        };
        Ok(Transformed::one(
            input.idempotency_key.clone(),
            reservation_id,
            "part_reservation",
            CanonicalRecord::PartReservation(record),
        ))
    }
}

/// The ERP's allocation decision for a reservation.
pub(super) fn erp_result(
    raw: &RawRecord<'_>,
    event: &ErpEvent,
    source: &Source<'_>,
    ctx: &Context<'_>,
) -> Result<PartReservation, Failure> {
    let status = match event.kind {
        ErpEventKind::PartAllocated => ReservationStatus::Allocated,
        ErpEventKind::PartBackOrdered => ReservationStatus::BackOrdered,
        ErpEventKind::PartRejected => ReservationStatus::Rejected,
        other => {
            return Err(Failure::business(
                "UNKNOWN_EVENT_TYPE",
                format!("{other:?} is not an allocation result"),
            ));
        }
    };
    let material = event.req(Field::Material)?;
    let product = ctx.xref.product_by_material(&material).ok_or_else(|| {
        Failure::business(
            "UNKNOWN_MATERIAL",
            format!("material {material} has no Salesforce product in the cross-reference"),
        )
    })?;
    let quantity: Quantity = event
        .dec(Field::Quantity, "INVALID_QUANTITY")?
        .ok_or_else(|| Failure::poison("MISSING_FIELD", "the reservation has no quantity"))?;
    let allocated: Option<Quantity> = event.dec(Field::AllocatedQuantity, "INVALID_QUANTITY")?;
    for q in [Some(quantity), allocated].into_iter().flatten() {
        if q.value().is_sign_negative() {
            return Err(Failure::business(
                "INVALID_QUANTITY",
                format!("reservation {} has quantity {q}", event.document_id),
            ));
        }
    }
    Ok(PartReservation {
        meta: meta(raw, source, "part_reservation", ctx.now_ms),
        reservation_id: source.correlation_id.to_string(),
        work_order_id: event.opt(Field::WorkOrderId)?,
        salesforce_product_id: product.to_string(),
        erp_material_id: Some(material),
        quantity,
        unit_of_measure: event.opt(Field::Unit)?.unwrap_or_default(),
        plant: event.opt(Field::Plant)?,
        status,
        status_at: event.occurred_at,
        // An allocation without a confirmed quantity allocates all of it.
        allocated_quantity: match status {
            ReservationStatus::Allocated => Some(allocated.unwrap_or(quantity)),
            _ => allocated,
        },
        expected_replenishment_date: event.date(Field::ReplenishmentDate)?,
        reason: event.opt(Field::Reason)?,
    })
}
