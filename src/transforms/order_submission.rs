//! Salesforce order submissions → `SalesOrder` for the ERP.
//!
//! Accepted inputs: the `Order_Submitted__e` platform event (custom fields `…__c`, lines as a
//! JSON array in `Lines__c`), and Order change events once the order is `Activated` (standard
//! field names; the lines in the same `Lines__c` field, which the enricher fills from the
//! order's OrderItems, or a Salesforce flow does: OrderItem change events arrive separately and
//! cannot be joined safely here).
//!
//! Owns: validation (lines, quantities, currency, amounts, payment terms) and the
//! cross-reference lookups (account → ERP customer, product → material, unit conversion). A
//! missing reference parks the order; routing to the ERP topic is the runtime's `route_by`.
//! Must not: round amounts.

use crate::adapters::salesforce::SfEvent;
use crate::adapters::{RawRecord, json};
use crate::failure::Failure;
use crate::schema::canonical::{Address, CanonicalRecord, Meta, SalesOrder, SalesOrderLine};
use crate::schema::decimal::{Dec, Money, UnitPrice};
use crate::xref::XrefLookup;

use super::{Context, SalesforceInput, Transform, Transformed, currency, master_data, meta};

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
        let input = SalesforceInput::read(raw, "Order", "Order_Id__c", "order submissions")?;
        let names = if input.is_change {
            &ORDER_CHANGE
        } else {
            &PLATFORM_EVENT
        };
        let order_id = input.record_id.clone();
        // An Order change that is not the activation is not a submission: nothing to emit.
        if let Some(status_field) = names.status
            && input.event.text(status_field)?.as_deref() != Some("Activated")
        {
            return Ok(Transformed::nothing(input.idempotency_key, order_id));
        }
        let meta = meta(raw, &input.source(raw, &order_id), "sales_order", ctx.now_ms);
        let record = map_order(&input.event, names, &order_id, ctx.xref, meta)?;
        Ok(Transformed::one(
            input.idempotency_key.clone(),
            order_id,
            "sales_order",
            CanonicalRecord::SalesOrder(record),
        ))
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
    currency::check(&currency)?;
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
        let li = master_data::line_item(xref, item, i)?;
        let price: UnitPrice = json::req_dec(item, "UnitPrice", "INVALID_AMOUNT")?;
        if price.value().is_sign_negative() {
            return Err(Failure::business(
                "INVALID_AMOUNT",
                format!("{} is negative", at("UnitPrice")),
            ));
        }
        let net = Money::checked_mul(li.sf_quantity, price).map_err(|err| {
            Failure::business(
                "AMOUNT_PRECISION",
                format!("{} x {}: {err}", at("Quantity"), at("UnitPrice")),
            )
        })?;
        let unit_price = match li.factor {
            Some(factor) => price_per(price, factor, li.sf_unit.as_deref().unwrap_or_default(), &li.unit)?,
            None => price,
        };
        lines.push(SalesOrderLine {
            line_number: json::opt_i64(item, "LineNumber")?
                .map(|n| n as i32)
                .unwrap_or(i as i32 + 1),
            salesforce_product_id: li.product,
            erp_material_id: Some(li.material),
            description: json::opt_str(item, "Description")?,
            quantity: li.quantity,
            unit_of_measure: li.unit,
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
