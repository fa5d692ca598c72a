//! Master-data cross-references between Salesforce and the ERPs (the `mdm.xref` topic).
//!
//! Owns: the entry types (account ↔ ERP customer, product ↔ material, unit conversions, payment
//! terms), parsing them from their JSON records, and the in-memory table with the reverse
//! indexes ERP-side flows need. Must not: consume Kafka (`runtime::xref_feed` does).
//!
//! Record format on `mdm.xref` (compacted): key `<type>:<id>`, JSON value, e.g.
//! `account:001Dn00000A1b2cIAB` → `{"type":"account","salesforce_id":"001Dn00000A1b2cIAB",
//! "erp_customer_id":"17100001","erp_instance":"erp-na","payment_terms":"NT30"}`. A tombstone
//! deletes the entry. Known customers may carry `name`, `tax_id`, `street`, `postal_code` and
//! `country`: customer governance checks new accounts against them for duplicates.
//!
//! `governance:<account id>` entries are the governed accounts' state (written by the governance
//! worker in its transactions): a lower `version` than the one held is a late read of an older
//! write and is ignored, so the table never moves an account back.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::schema::canonical::GovernanceState;
use crate::schema::decimal::Dec;

mod governed;
pub use governed::{AccountData, GovernedAccount, KnownCustomer};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum XrefEntry {
    Account {
        salesforce_id: String,
        erp_customer_id: String,
        #[serde(default)]
        erp_instance: Option<String>,
        #[serde(default)]
        payment_terms: Option<String>,
        /// What the ERP knows of the customer, for duplicate checks (all optional).
        #[serde(default, flatten)]
        known: KnownCustomer,
    },
    Product {
        salesforce_id: String,
        erp_material_id: String,
        /// ERP unit of measure of the material.
        unit_of_measure: String,
    },
    /// A Salesforce unit → ERP unit, with the factor that converts quantities (erp = sf x factor).
    Uom {
        salesforce_id: String,
        erp_unit: String,
        #[serde(default = "one")]
        factor: String,
    },
    /// An ERP document and the order it belongs to, learned from the flow (an API lookup, or an
    /// event that carried both): sales order `4500017342` → Salesforce Order `801…`, delivery
    /// `80003121` → sales order `4500017342`. Later events of the document need no call.
    Document {
        /// The profile's source system and the ERP instance (`sap_s4`, `erp-eu`).
        system: String,
        instance: String,
        /// `sales_order`, `outbound_delivery`, `billing_document` (a lookup's `document`).
        document: String,
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        erp_order_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        salesforce_order_id: Option<String>,
    },
    /// A governed account's state (`transforms::governance`).
    Governance(Box<GovernedAccount>),
}

fn one() -> String {
    "1".into()
}

impl XrefEntry {
    /// The `mdm.xref` key of this entry (and the reference parked records wait for).
    pub fn reference(&self) -> String {
        match self {
            XrefEntry::Account { salesforce_id, .. } => reference("account", salesforce_id),
            XrefEntry::Product { salesforce_id, .. } => reference("product", salesforce_id),
            XrefEntry::Uom { salesforce_id, .. } => reference("uom", salesforce_id),
            XrefEntry::Document {
                system,
                instance,
                document,
                id,
                ..
            } => document_reference(system, instance, document, id),
            XrefEntry::Governance(g) => reference("governance", &g.salesforce_id),
        }
    }
}

pub fn reference(kind: &str, id: &str) -> String {
    format!("{kind}:{id}")
}

/// The key of a learned document link: `document:<system>:<instance>:<document>:<id>`.
pub fn document_reference(system: &str, instance: &str, document: &str, id: &str) -> String {
    format!("document:{system}:{instance}:{document}:{id}")
}

/// What transforms may ask.
pub trait XrefLookup {
    fn get(&self, reference: &str) -> Option<&XrefEntry>;
    /// Salesforce Product2 id of an ERP material.
    fn product_by_material(&self, material: &str) -> Option<&str>;
    /// Salesforce Account id of an ERP customer.
    fn account_by_customer(&self, customer: &str) -> Option<&str>;
    /// Every known customer (`account:`) and governed account (`governance:`) entry.
    fn for_each_account(&self, f: &mut dyn FnMut(&XrefEntry));
}

/// A table seen through writes not applied to it yet (a batch's earlier records): the writes
/// win, newest first.
pub struct Overlay<'a> {
    pub base: &'a dyn XrefLookup,
    pub writes: &'a [XrefEntry],
}

impl XrefLookup for Overlay<'_> {
    fn get(&self, reference: &str) -> Option<&XrefEntry> {
        self.writes
            .iter()
            .rev()
            .find(|e| e.reference() == reference)
            .or_else(|| self.base.get(reference))
    }

    fn product_by_material(&self, material: &str) -> Option<&str> {
        self.base.product_by_material(material)
    }

    fn account_by_customer(&self, customer: &str) -> Option<&str> {
        self.base.account_by_customer(customer)
    }

    fn for_each_account(&self, f: &mut dyn FnMut(&XrefEntry)) {
        let mut seen = BTreeSet::new();
        for e in self.writes.iter().rev() {
            if matches!(e, XrefEntry::Account { .. } | XrefEntry::Governance(_)) && seen.insert(e.reference()) {
                f(e);
            }
        }
        self.base.for_each_account(&mut |e| {
            if !seen.contains(&e.reference()) {
                f(e)
            }
        });
    }
}

/// The whole cross-reference, kept current by the feed.
#[derive(Debug, Default, Clone)]
pub struct XrefTable {
    entries: HashMap<String, XrefEntry>,
    by_material: HashMap<String, String>,
    by_customer: HashMap<String, String>,
    /// Keys of the `account:` and `governance:` entries (duplicate candidates).
    accounts: BTreeSet<String>,
    /// Governed accounts per state (`syncline_accounts_in_state`).
    in_state: BTreeMap<GovernanceState, i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum XrefError {
    #[error("mdm.xref record `{key}`: {message}")]
    Invalid { key: String, message: String },
}

impl XrefTable {
    /// Applies one `mdm.xref` record; returns the reference it (re)defines.
    pub fn apply(&mut self, key: &str, value: Option<&[u8]>) -> Result<String, XrefError> {
        let Some(bytes) = value else {
            if let Some(old) = self.entries.remove(key) {
                self.unindex(&old);
            }
            return Ok(key.to_string());
        };
        let entry: XrefEntry = serde_json::from_slice(bytes).map_err(|e| XrefError::Invalid {
            key: key.to_string(),
            message: e.to_string(),
        })?;
        if entry.reference() != key {
            return Err(XrefError::Invalid {
                key: key.to_string(),
                message: format!("the key must be `{}`", entry.reference()),
            });
        }
        if let XrefEntry::Uom { factor, .. } = &entry
            && factor.parse::<Dec<6>>().map(|f| !f.is_positive()).unwrap_or(true)
        {
            return Err(XrefError::Invalid {
                key: key.to_string(),
                message: format!("factor `{factor}` must be a positive decimal"),
            });
        }
        if let (XrefEntry::Governance(new), Some(XrefEntry::Governance(held))) = (&entry, self.entries.get(key))
            && new.version < held.version
        {
            return Ok(key.to_string());
        }
        if let Some(old) = self.entries.get(key).cloned() {
            self.unindex(&old);
        }
        match &entry {
            XrefEntry::Product {
                salesforce_id,
                erp_material_id,
                ..
            } => {
                self.by_material.insert(erp_material_id.clone(), salesforce_id.clone());
            }
            XrefEntry::Account {
                salesforce_id,
                erp_customer_id,
                ..
            } => {
                self.by_customer.insert(erp_customer_id.clone(), salesforce_id.clone());
                self.accounts.insert(key.to_string());
            }
            XrefEntry::Governance(g) => {
                *self.in_state.entry(g.state).or_default() += 1;
                self.accounts.insert(key.to_string());
            }
            XrefEntry::Uom { .. } | XrefEntry::Document { .. } => {}
        }
        self.entries.insert(key.to_string(), entry);
        Ok(key.to_string())
    }

    fn unindex(&mut self, old: &XrefEntry) {
        match old {
            XrefEntry::Product { erp_material_id, .. } => {
                self.by_material.remove(erp_material_id);
            }
            XrefEntry::Account {
                erp_customer_id,
                salesforce_id,
                ..
            } => {
                self.by_customer.remove(erp_customer_id);
                self.accounts.remove(&reference("account", salesforce_id));
            }
            XrefEntry::Governance(g) => {
                if let Some(n) = self.in_state.get_mut(&g.state) {
                    *n -= 1;
                }
                self.accounts.remove(&reference("governance", &g.salesforce_id));
            }
            XrefEntry::Uom { .. } | XrefEntry::Document { .. } => {}
        }
    }

    /// Governed accounts per state.
    pub fn accounts_in_state(&self) -> &BTreeMap<GovernanceState, i64> {
        &self.in_state
    }

    /// Every governed account.
    pub fn governed(&self) -> impl Iterator<Item = &GovernedAccount> {
        self.accounts.iter().filter_map(|k| match self.entries.get(k) {
            Some(XrefEntry::Governance(g)) => Some(&**g),
            _ => None,
        })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl XrefLookup for XrefTable {
    fn get(&self, reference: &str) -> Option<&XrefEntry> {
        self.entries.get(reference)
    }

    fn product_by_material(&self, material: &str) -> Option<&str> {
        self.by_material.get(material).map(String::as_str)
    }

    fn account_by_customer(&self, customer: &str) -> Option<&str> {
        self.by_customer.get(customer).map(String::as_str)
    }

    fn for_each_account(&self, f: &mut dyn FnMut(&XrefEntry)) {
        for k in &self.accounts {
            if let Some(e) = self.entries.get(k) {
                f(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_index_both_ways_and_tombstones_delete() {
        let mut t = XrefTable::default();
        let v = br#"{"type":"product","salesforce_id":"01tA","erp_material_id":"TG11","unit_of_measure":"EA"}"#;
        assert_eq!(t.apply("product:01tA", Some(v)).unwrap(), "product:01tA");
        assert_eq!(t.product_by_material("TG11"), Some("01tA"));
        t.apply("product:01tA", None).unwrap();
        assert!(t.get("product:01tA").is_none() && t.product_by_material("TG11").is_none());
    }

    #[test]
    fn a_governed_account_reads_back_with_its_scores_and_an_older_version_never_replaces_it() {
        let mut t = XrefTable::default();
        let at = |version: i64, state: &str| {
            format!(
                r#"{{"type":"governance","salesforce_id":"001A","version":{version},"state":"{state}","state_at":1,"data":{{}},
                "reasons":[{{"code":"DUPLICATE_NAME","message":"m","candidate_account_id":"001B","score":0.963}}]}}"#
            )
        };
        t.apply("governance:001A", Some(at(2, "REQUESTED").as_bytes())).unwrap();
        t.apply("governance:001A", Some(at(1, "DUPLICATE_SUSPECTED").as_bytes()))
            .unwrap();
        let Some(XrefEntry::Governance(g)) = t.get("governance:001A") else {
            panic!("not applied")
        };
        assert_eq!((g.version, g.state), (2, GovernanceState::Requested));
        assert_eq!(g.reasons[0].score, Some(0.963));
        assert_eq!(t.accounts_in_state().get(&GovernanceState::Requested), Some(&1));
        assert_eq!(t.governed().count(), 1);
    }

    #[test]
    fn bad_records_are_errors_not_entries() {
        let mut t = XrefTable::default();
        assert!(t.apply("account:001A", Some(b"{}")).is_err());
        let wrong_key = br#"{"type":"account","salesforce_id":"001B","erp_customer_id":"1"}"#;
        assert!(t.apply("account:001A", Some(wrong_key)).is_err());
        let bad_factor = br#"{"type":"uom","salesforce_id":"Box","erp_unit":"BX","factor":"0"}"#;
        assert!(t.apply("uom:Box", Some(bad_factor)).is_err());
        assert!(t.is_empty());
    }
}
