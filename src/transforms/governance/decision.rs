//! An operator's decision on a governed account, as `syncline customers approve|reject|merge`
//! writes it to the decisions topic (JSON, keyed by the account id).
//!
//! Owns: the record's shape and its idempotency key. Must not: apply it (the lifecycle does,
//! in the governance worker's transaction).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Approve,
    Reject,
    Merge,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Approve => "approve",
            Action::Reject => "reject",
            Action::Merge => "merge",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    pub account_id: String,
    pub decision: Action,
    /// The version of the account the operator looked at: a decision on an account that changed
    /// since is refused, not applied to data nobody reviewed.
    pub version: i64,
    /// `merge`: the Salesforce id of the account (an ERP customer) this one is a duplicate of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub into: Option<String>,
    pub by: String,
    /// Epoch milliseconds.
    pub at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Decision {
    /// The same decision on the same version of the account is one decision, however often it
    /// is sent.
    pub fn idempotency_key(&self) -> String {
        format!(
            "decision:{}:v{}:{}",
            self.account_id,
            self.version,
            self.decision.name()
        )
    }
}
