//! The governance rules of a worker, as `[worker.governance]` in `topology.toml` writes them.
//!
//! Owns: the rule types, their defaults and what they say of one account (which legal entity,
//! whether the tax id must be there, the credit threshold). Must not: read events or state.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::schema::decimal::Money;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// Where `syncline customers approve|reject|merge` write their decisions; one of the
    /// worker's inputs.
    #[serde(default = "decisions_topic")]
    pub decisions_topic: String,
    /// Whether an account that passes every check is approved without a person (otherwise it
    /// waits in VALIDATED for `syncline customers approve`).
    #[serde(default = "yes")]
    pub auto_approve: bool,
    /// Billing country (ISO 3166-1 alpha-2) → legal entity. The account's own legal entity
    /// field, when set to a legal entity named here or in `credit_review`, overrides it.
    #[serde(default)]
    pub legal_entities: BTreeMap<String, String>,
    #[serde(default)]
    pub duplicates: DuplicateRules,
    #[serde(default)]
    pub tax_id: TaxIdRules,
    /// Legal entity → the credit an account may ask for without a review.
    #[serde(default)]
    pub credit_review: BTreeMap<String, Threshold>,
    /// The Account field holding the requested credit limit.
    #[serde(default = "credit_limit_field")]
    pub credit_limit_field: String,
    /// `FROM->TO` → how long an account may take from entering FROM to reaching TO
    /// (`syncline customers stuck`).
    #[serde(default, deserialize_with = "crate::duration::settings")]
    pub service_levels: BTreeMap<String, Duration>,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            decisions_topic: decisions_topic(),
            auto_approve: true,
            legal_entities: BTreeMap::new(),
            duplicates: DuplicateRules::default(),
            tax_id: TaxIdRules::default(),
            credit_review: BTreeMap::new(),
            credit_limit_field: credit_limit_field(),
            service_levels: BTreeMap::new(),
        }
    }
}

fn decisions_topic() -> String {
    "syncline.customers.decisions".into()
}

fn credit_limit_field() -> String {
    "Requested_Credit_Limit__c".into()
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DuplicateRules {
    /// Jaro-Winkler similarity of normalised names (0..1) from which two accounts are suspected
    /// to be one customer. Equal tax ids, and equal postal code with equal street, always are.
    #[serde(default = "name_similarity")]
    pub name_similarity: f64,
}

impl Default for DuplicateRules {
    fn default() -> Self {
        Self {
            name_similarity: name_similarity(),
        }
    }
}

fn name_similarity() -> f64 {
    0.92
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaxIdRules {
    /// Billing countries where an account without a tax id is rejected.
    #[serde(default)]
    pub required_in: Vec<String>,
}

/// A credit amount in a currency, e.g. `{ amount = "50000.00", currency = "EUR" }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    pub amount: String,
    pub currency: String,
}

impl Threshold {
    pub fn money(&self) -> Option<Money> {
        self.amount.parse().ok()
    }
}

impl Rules {
    /// The legal entity of an account: its own field when that names a legal entity these
    /// rules know, else its billing country's.
    pub fn legal_entity(&self, own: Option<&str>, billing_country: Option<&str>) -> Option<String> {
        let known = |le: &str| self.legal_entities.values().any(|v| v == le) || self.credit_review.contains_key(le);
        if let Some(le) = own.filter(|le| known(le)) {
            return Some(le.to_string());
        }
        billing_country
            .and_then(|c| self.legal_entities.get(&c.to_ascii_uppercase()))
            .cloned()
    }

    pub fn tax_id_required(&self, country: Option<&str>) -> bool {
        country.is_some_and(|c| self.tax_id.required_in.iter().any(|r| r.eq_ignore_ascii_case(c)))
    }

    /// What the validator checks beyond the types: (key, problem, fix).
    pub fn problems(&self) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        let s = self.duplicates.name_similarity;
        if !(0.5..=1.0).contains(&s) {
            out.push((
                "duplicates.name_similarity".into(),
                format!("{s} is outside 0.5..1"),
                "use a Jaro-Winkler similarity such as 0.92".into(),
            ));
        }
        for (le, t) in &self.credit_review {
            if t.money().is_none_or(|m| !m.is_positive()) {
                out.push((
                    format!("credit_review.{le}.amount"),
                    format!("`{}` is not a positive decimal", t.amount),
                    "write the amount as text, e.g. \"50000.00\"".into(),
                ));
            }
            if t.currency.len() != 3 || !t.currency.chars().all(|c| c.is_ascii_uppercase()) {
                out.push((
                    format!("credit_review.{le}.currency"),
                    format!("`{}` is not an ISO 4217 code", t.currency),
                    "use a three-letter code such as EUR".into(),
                ));
            }
        }
        for country in self.legal_entities.keys() {
            if country.len() != 2 || !country.chars().all(|c| c.is_ascii_uppercase()) {
                out.push((
                    format!("legal_entities.{country}"),
                    "the key is not an ISO 3166-1 alpha-2 country code".into(),
                    "use two upper-case letters such as DE".into(),
                ));
            }
        }
        for level in self.service_levels.keys() {
            let parsed = level.split_once("->").map(|(a, b)| {
                (
                    crate::schema::canonical::GovernanceState::parse(a.trim()),
                    crate::schema::canonical::GovernanceState::parse(b.trim()),
                )
            });
            if !matches!(parsed, Some((Some(_), Some(_)))) {
                out.push((
                    format!("service_levels.\"{level}\""),
                    "is not FROM->TO of two governance states".into(),
                    "e.g. \"PROPOSED->APPROVED\" = \"1d\"".into(),
                ));
            }
        }
        out
    }
}
