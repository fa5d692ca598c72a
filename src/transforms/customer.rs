//! Salesforce Account change events → `CustomerMaster` requests for the ERP.
//!
//! Owns: the Account field mapping and the change type. The ERP's answer (the new customer
//! number) comes back as an `account:` entry on `mdm.xref`, which re-drives parked orders.
//! Must not: invent an ERP customer number.

use serde_json::Value;

use crate::adapters::salesforce::{self, SfEvent};
use crate::adapters::{RawRecord, json};
use crate::failure::Failure;
use crate::schema::canonical::{Address, CanonicalRecord, ChangeType, CustomerMaster};
use crate::xref::{self, XrefEntry};

use super::{Context, Emitted, Source, Transform, Transformed, currency, meta};

pub struct AccountChanges;

/// A compound address field (`BillingAddress`) or its flat parts (`BillingStreet`, ...).
fn address(e: &SfEvent, prefix: &str) -> Result<Option<Address>, Failure> {
    let part = |name: &str| -> Result<Option<String>, Failure> {
        match e.field(&format!("{prefix}Address")) {
            Some(obj @ Value::Object(_)) => json::opt_str(obj, name),
            _ => e.text(&format!("{prefix}{name}")),
        }
    };
    let a = Address {
        street: part("Street")?,
        city: part("City")?,
        postal_code: part("PostalCode")?,
        region: part("State")?,
        country: part("Country")?,
    };
    Ok((a != Address::default()).then_some(a))
}

impl Transform for AccountChanges {
    fn apply(&self, raw: &RawRecord<'_>, ctx: &Context<'_>) -> Result<Transformed, Failure> {
        let event = salesforce::parse(raw)?;
        let Some(header) = &event.change else {
            return Err(Failure::business(
                "UNKNOWN_EVENT_TYPE",
                "account_changes reads Account change events only",
            ));
        };
        if header.entity_name != "Account" {
            return Err(Failure::business(
                "UNKNOWN_EVENT_TYPE",
                format!("{} change events are not Account changes", header.entity_name),
            ));
        }
        let account_id = header.record_ids[0].clone();
        let change_type = match header.change_type.as_str() {
            "CREATE" => ChangeType::Create,
            "UPDATE" => ChangeType::Update,
            "DELETE" => ChangeType::Delete,
            "UNDELETE" => ChangeType::Undelete,
            other => {
                return Err(Failure::business(
                    "UNKNOWN_EVENT_TYPE",
                    format!("change type `{other}`"),
                ));
            }
        };
        let currency = event.text("CurrencyIsoCode")?;
        if let Some(c) = &currency {
            currency::check(c)?;
        }
        let known = ctx.xref.get(&xref::reference("account", &account_id));
        let (erp_customer_id, erp_instance) = match known {
            Some(XrefEntry::Account {
                erp_customer_id,
                erp_instance,
                ..
            }) => (Some(erp_customer_id.clone()), erp_instance.clone()),
            _ => (None, None),
        };
        let key = format!("salesforce:{}", event.identity()?);
        let source = Source::salesforce(
            raw,
            &key,
            &account_id,
            header.transaction_key.as_deref().unwrap_or(&key),
            event.occurred_at,
        );
        let record = CustomerMaster {
            meta: meta(raw, &source, "customer_master", ctx.now_ms),
            salesforce_account_id: account_id.clone(),
            erp_customer_id,
            erp_instance,
            change_type,
            name: event.text("Name")?,
            legal_entity: event.text("Legal_Entity__c")?,
            tax_id: event.text("Tax_Id__c")?,
            currency,
            payment_terms: event.text("Payment_Terms__c")?,
            billing_address: address(&event, "Billing")?,
            shipping_address: address(&event, "Shipping")?,
            changed_fields: header.changed_fields.clone(),
        };
        Ok(Transformed {
            idempotency_key: key.clone(),
            correlation_id: account_id,
            outputs: vec![Emitted {
                output: "customer_master",
                record: CanonicalRecord::CustomerMaster(record),
            }],
        })
    }
}
