//! Salesforce references resolved through the cross-reference (`mdm.xref`): account → ERP
//! customer, product → material, Salesforce unit → ERP unit.
//!
//! Owns: the lookups every Salesforce-side workflow makes and the `Failure::missing` that parks a
//! record until the reference arrives. Must not: decide what a workflow does without a reference
//! (parking is the default; a workflow may treat a reference as optional by not asking).

use serde_json::Value;

use crate::adapters::json;
use crate::failure::Failure;
use crate::schema::decimal::{Dec, Quantity};
use crate::xref::{self, XrefEntry, XrefLookup};

/// What the cross-reference knows about a Salesforce Account.
pub struct Customer<'a> {
    pub erp_customer_id: &'a str,
    pub erp_instance: Option<&'a str>,
    pub payment_terms: Option<&'a str>,
}

pub fn customer<'a>(xref: &'a dyn XrefLookup, account_id: &str) -> Result<Customer<'a>, Failure> {
    let account_ref = xref::reference("account", account_id);
    match xref.get(&account_ref) {
        Some(XrefEntry::Account {
            erp_customer_id,
            erp_instance,
            payment_terms,
            ..
        }) => Ok(Customer {
            erp_customer_id,
            erp_instance: erp_instance.as_deref(),
            payment_terms: payment_terms.as_deref(),
        }),
        _ => Err(Failure::missing(
            account_ref,
            format!("Account {account_id} is not (yet) an ERP customer"),
        )),
    }
}

/// A Salesforce product's ERP material and the material's unit of measure.
pub fn material<'a>(xref: &'a dyn XrefLookup, product_id: &str) -> Result<(&'a str, &'a str), Failure> {
    let product_ref = xref::reference("product", product_id);
    match xref.get(&product_ref) {
        Some(XrefEntry::Product {
            erp_material_id,
            unit_of_measure,
            ..
        }) => Ok((erp_material_id, unit_of_measure)),
        _ => Err(Failure::missing(
            product_ref,
            format!("Product {product_id} is not (yet) an ERP material"),
        )),
    }
}

/// A Salesforce quantity in the material's unit: unchanged when the units agree (or Salesforce
/// names none), else converted exactly by the `uom:` factor, which is returned so prices can
/// follow. Refused, never rounded, when the result does not fit the quantity's scale.
pub fn in_erp_unit(
    xref: &dyn XrefLookup,
    qty: Quantity,
    sf_unit: Option<&str>,
    material_unit: &str,
) -> Result<(Quantity, String, Option<Dec<6>>), Failure> {
    let Some(sf_unit) = sf_unit.filter(|u| *u != material_unit) else {
        return Ok((qty, material_unit.to_string(), None));
    };
    let uom_ref = xref::reference("uom", sf_unit);
    let Some(XrefEntry::Uom { erp_unit, factor, .. }) = xref.get(&uom_ref) else {
        return Err(Failure::missing(
            uom_ref,
            format!("no conversion from Salesforce unit `{sf_unit}` to an ERP unit"),
        ));
    };
    let factor: Dec<6> = factor
        .parse()
        .map_err(|e| Failure::business("INVALID_UOM_FACTOR", format!("uom:{sf_unit}: {e}")))?;
    let quantity = Quantity::checked_mul(qty, factor)
        .map_err(|e| Failure::business("INVALID_QUANTITY", format!("{qty} {sf_unit} in {erp_unit}: {e}")))?;
    Ok((quantity, erp_unit.clone(), Some(factor)))
}

/// One Salesforce line item (`Product2Id`, a positive `Quantity`, an optional `UnitOfMeasure`)
/// with its ERP material and the quantity in the material's unit.
pub struct LineItem {
    pub product: String,
    pub material: String,
    /// As Salesforce sent it, before unit conversion (prices are per this unit).
    pub sf_quantity: Quantity,
    pub sf_unit: Option<String>,
    pub quantity: Quantity,
    pub unit: String,
    /// ERP units per Salesforce unit, when they differ.
    pub factor: Option<Dec<6>>,
}

/// Reads item `index` of `Lines__c`; errors name the item (`Lines__c[1].Quantity`).
pub fn line_item(xref: &dyn XrefLookup, item: &Value, index: usize) -> Result<LineItem, Failure> {
    let at = |f: &str| format!("Lines__c[{index}].{f}");
    let product = json::req_str(item, "Product2Id").map_err(|f| Failure {
        message: format!("{}: {}", at("Product2Id"), f.message),
        ..f
    })?;
    let sf_quantity: Quantity = json::req_dec(item, "Quantity", "INVALID_QUANTITY")?;
    if !sf_quantity.is_positive() {
        return Err(Failure::business(
            "INVALID_QUANTITY",
            format!("{} is {sf_quantity}; quantities must be positive", at("Quantity")),
        ));
    }
    let (material, material_unit) = material(xref, &product)?;
    let sf_unit = json::opt_str(item, "UnitOfMeasure")?;
    let (quantity, unit, factor) = in_erp_unit(xref, sf_quantity, sf_unit.as_deref(), material_unit)?;
    Ok(LineItem {
        product,
        material: material.to_string(),
        sf_quantity,
        sf_unit,
        quantity,
        unit,
        factor,
    })
}
