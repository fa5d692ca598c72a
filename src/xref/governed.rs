//! What the cross-reference holds of customers beyond their ERP number: the data a known
//! customer is compared on, and a governed account's state (`transforms::governance`).
//!
//! Owns: the shapes of that data as `mdm.xref` carries it. Must not: judge it.

use serde::{Deserialize, Serialize};

use crate::schema::canonical::{Address, GovernanceReason, GovernanceState, GovernanceTransition};

/// The duplicate-relevant data of a known ERP customer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownCustomer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

/// The account data governance keeps: the latest value of each field the account's change
/// events carried (an update event carries only what changed).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AccountData {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub tax_id: Option<String>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub payment_terms: Option<String>,
    /// The account's own legal entity field (an override of the billing country's).
    #[serde(default)]
    pub legal_entity: Option<String>,
    #[serde(default)]
    pub billing_address: Option<Address>,
    #[serde(default)]
    pub shipping_address: Option<Address>,
    /// The requested credit limit, as the decimal text the event carried.
    #[serde(default)]
    pub credit_limit: Option<String>,
}

/// One governed account: its state, the data checked, why it is where it is, and every
/// transition with who decided and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GovernedAccount {
    pub salesforce_id: String,
    pub version: i64,
    pub state: GovernanceState,
    pub state_at: i64,
    pub data: AccountData,
    /// Assigned by the rules (billing country, or the account's override).
    #[serde(default)]
    pub legal_entity: Option<String>,
    #[serde(default)]
    pub erp_customer_id: Option<String>,
    #[serde(default)]
    pub erp_instance: Option<String>,
    #[serde(default)]
    pub reasons: Vec<GovernanceReason>,
    /// A credit review is still due after the current review (a suspected duplicate that also
    /// asks for more credit than its legal entity grants unreviewed).
    #[serde(default)]
    pub credit_review_due: bool,
    #[serde(default)]
    pub history: Vec<GovernanceTransition>,
}

impl GovernedAccount {
    /// An account nothing is known of yet (state UNKNOWN, version 0).
    pub fn new(salesforce_id: &str) -> Self {
        Self {
            salesforce_id: salesforce_id.to_string(),
            version: 0,
            state: GovernanceState::Unknown,
            state_at: 0,
            data: AccountData::default(),
            legal_entity: None,
            erp_customer_id: None,
            erp_instance: None,
            reasons: vec![],
            credit_review_due: false,
            history: vec![],
        }
    }

    /// When the account last entered `state`, if it ever did.
    pub fn entered(&self, state: GovernanceState) -> Option<i64> {
        self.history.iter().rev().find(|t| t.to == state).map(|t| t.at)
    }
}
