//! Salesforce order submissions → `SalesOrder` for the ERP.
//!
//! Accepted inputs: the `Order_Submitted__e` platform event (custom fields `…__c`, lines as a
//! JSON array in `Lines__c`), and Order change events once the order is `Activated` (standard
//! field names; the lines come from the same `Lines__c` field, filled by a Salesforce flow,
//! because OrderItem changes arrive as separate events that cannot be joined safely here).
//!
//! Owns: validation (lines, quantities, currency, amounts, payment terms) and the
//! cross-reference lookups (account → ERP customer, product → material, unit conversion). A
//! missing reference parks the order; routing to the ERP topic is the runtime's `route_by`.
//! Must not: round amounts.

use crate::adapters::salesforce::{self, SfEvent};
use crate::adapters::{RawRecord, json};
use crate::failure::Failure;
use crate::schema::canonical::{Address, CanonicalRecord, Meta, SalesOrder, SalesOrderLine};
use crate::schema::decimal::{Dec, Money, Quantity, UnitPrice};
use crate::xref::XrefLookup;

use super::{Context, Emitted, Source, Transform, Transformed, currency, master_data, meta};

pub struct OrderSubmission;

/// Field names in the platform event and in the Order change event.
struct Names {
    account: &'static str,
    currency: &'static str,
    order_number: &'static str,
    order_date: &'static str,
    po_number: &'static str,
    status: Option<&'static str>,
}

const PLATFORM_EVENT: Names = Names {
    account: "Account_Id__c",
    currency: "Currency__c",
    order_number: "Order_Number__c",
    order_date: "Order_Date__c",
    po_number: "PO_Number__c",
    status: None,
};

const ORDER_CHANGE: Names = Names {
    account: "AccountId",
    currency: "CurrencyIsoCode",
    order_number: "OrderNumber",
    order_date: "EffectiveDate",
    po_number: "PoNumber",
    status: Some("Status"),
};

impl Transform for OrderSubmission {
    fn apply(&self, raw: &RawRecord<'_>, ctx: &Context<'_>) -> Result<Transformed, Failure> {
        let event = salesforce::parse(raw)?;
        let identity = event.identity()?;
        let idempotency_key = format!("salesforce:{identity}");
        let (names, order_id) = match &event.change {
            Some(h) if h.entity_name == "Order" => (&ORDER_CHANGE, h.record_ids[0].clone()),
            Some(h) => {
                return Err(Failure::business(
                    "UNKNOWN_EVENT_TYPE",
                    format!("{} change events are not order submissions", h.entity_name),
                ));
            }
            None => (&PLATFORM_EVENT, event.required("Order_Id__c")?),
        };
        // An Order change that is not the activation is not a submission: nothing to emit.
        if let Some(status_field) = names.status
            && event.text(status_field)?.as_deref() != Some("Activated")
        {
            return Ok(Transformed {
                idempotency_key,
                correlation_id: order_id,
                outputs: vec![],
            });
        }
        let source = Source::salesforce(
            raw,
            &idempotency_key,
            &order_id,
            event.event_uuid.as_deref().unwrap_or(&identity),
            event.occurred_at,
        );
        let record = map_order(
            &event,
            names,
            &order_id,
            ctx.xref,
            meta(raw, &source, "sales_order", ctx.now_ms),
        )?;
        Ok(Transformed {
            idempotency_key: idempotency_key.clone(),
            correlation_id: order_id,
            outputs: vec![Emitted {
                output: "sales_order",
                record: CanonicalRecord::SalesOrder(record),
            }],
        })
    }
}

fn map_order(
    e: &SfEvent,
    names: &Names,
    order_id: &str,
    xref: &dyn XrefLookup,
    meta: Meta,
) -> Result<SalesOrder, Failure> {
    let account_id = e.required(names.account)?;
    let legal_entity = e.required("Legal_Entity__c")?;
    let currency = e.required(names.currency)?;
    if !currency::is_known(&currency) {
        return Err(Failure::business(
            "UNKNOWN_CURRENCY",
            format!("`{currency}` is not an ISO 4217 currency code"),
        ));
    }
    let customer = master_data::customer(xref, &account_id)?;
    let payment_terms = e
        .text("Payment_Terms__c")?
        .or_else(|| customer.payment_terms.map(str::to_string))
        .ok_or_else(|| {
            Failure::business(
                "MISSING_PAYMENT_TERMS",
                format!(
                    "order {order_id} has no payment terms and account {account_id} has none in the cross-reference"
                ),
            )
        })?;
    let lines = map_lines(e, xref)?;
    let mut total = Money::ZERO;
    for l in &lines {
        total = total
            .checked_add(l.net_amount)
            .map_err(|err| Failure::business("INVALID_AMOUNT", err.to_string()))?;
    }
    if let Some(declared) = e.dec::<2>("Total_Amount__c", "INVALID_AMOUNT")?
        && declared != total
    {
        return Err(Failure::business(
            "TOTAL_MISMATCH",
            format!("Total_Amount__c is {declared} but the lines add up to {total}"),
        ));
    }
    let order_date = match e.date(names.order_date)? {
        Some(d) => d,
        None => (e.occurred_at.div_euclid(86_400_000)) as i32,
    };
    let ship_to = ship_to(e)?;
    Ok(SalesOrder {
        meta,
        order_id: order_id.to_string(),
        order_number: e.text(names.order_number)?,
        erp_instance: customer
            .erp_instance
            .map_or_else(|| legal_entity.clone(), str::to_string),
        legal_entity,
        sales_org: e.text("Sales_Org__c")?,
        salesforce_account_id: account_id,
        erp_customer_id: customer.erp_customer_id.to_string(),
        order_date,
        requested_delivery_date: e.date("Requested_Delivery_Date__c")?,
        po_number: e.text(names.po_number)?,
        currency,
        payment_terms,
        incoterms: e.text("Incoterms__c")?,
        total_amount: total,
        ship_to,
        lines,
    })
}

fn ship_to(e: &SfEvent) -> Result<Option<Address>, Failure> {
    let a = Address {
        street: e.text("Ship_To_Street__c")?,
        city: e.text("Ship_To_City__c")?,
        postal_code: e.text("Ship_To_Postal_Code__c")?,
        region: e.text("Ship_To_State__c")?,
        country: e.text("Ship_To_Country__c")?,
    };
    Ok((a != Address::default()).then_some(a))
}

fn map_lines(e: &SfEvent, xref: &dyn XrefLookup) -> Result<Vec<SalesOrderLine>, Failure> {
    let Some(items) = e.array("Lines__c")? else {
        return Err(Failure::business(
            "INVALID_ORDER_LINES",
            "the order has no lines (`Lines__c`)",
        ));
    };
    if items.is_empty() {
        return Err(Failure::business("INVALID_ORDER_LINES", "the order has no lines"));
    }
    let mut lines = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = |f: &str| format!("Lines__c[{i}].{f}");
        let product = json::req_str(item, "Product2Id").map_err(|f| Failure {
            message: format!("{}: {}", at("Product2Id"), f.message),
            ..f
        })?;
        let sf_qty: Quantity = json::req_dec(item, "Quantity", "INVALID_QUANTITY")?;
        if !sf_qty.is_positive() {
            return Err(Failure::business(
                "INVALID_QUANTITY",
                format!("{} is {sf_qty}; quantities must be positive", at("Quantity")),
            ));
        }
        let price: UnitPrice = json::req_dec(item, "UnitPrice", "INVALID_AMOUNT")?;
        if price.value().is_sign_negative() {
            return Err(Failure::business(
                "INVALID_AMOUNT",
                format!("{} is negative", at("UnitPrice")),
            ));
        }
        let net = Money::checked_mul(sf_qty, price).map_err(|err| {
            Failure::business(
                "AMOUNT_PRECISION",
                format!("{} x {}: {err}", at("Quantity"), at("UnitPrice")),
            )
        })?;
        let (erp_material_id, material_unit) = master_data::material(xref, &product)?;
        let sf_unit = json::opt_str(item, "UnitOfMeasure")?;
        let (quantity, unit, factor) = master_data::in_erp_unit(xref, sf_qty, sf_unit.as_deref(), material_unit)?;
        let unit_price = match factor {
            Some(factor) => price_per(price, factor, sf_unit.as_deref().unwrap_or_default(), &unit)?,
            None => price,
        };
        lines.push(SalesOrderLine {
            line_number: json::opt_i64(item, "LineNumber")?
                .map(|n| n as i32)
                .unwrap_or(i as i32 + 1),
            salesforce_product_id: product,
            erp_material_id: Some(erp_material_id.to_string()),
            description: json::opt_str(item, "Description")?,
            quantity,
            unit_of_measure: unit,
            unit_price,
            net_amount: net,
        });
    }
    Ok(lines)
}

/// The price per ERP unit when one ERP unit is `factor` Salesforce units: exact or refused.
fn price_per(price: UnitPrice, factor: Dec<6>, sf_unit: &str, erp_unit: &str) -> Result<UnitPrice, Failure> {
    let per_unit = price
        .value()
        .checked_div(factor.value())
        .ok_or_else(|| Failure::business("INVALID_UOM_FACTOR", format!("uom:{sf_unit}: division by {factor}")))?;
    UnitPrice::new(per_unit).map_err(|e| {
        Failure::business(
            "AMOUNT_PRECISION",
            format!("unit price {price} per {sf_unit} in {erp_unit}: {e}"),
        )
    })
}
