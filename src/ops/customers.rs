//! Operators' view of customer governance: the governed accounts (read from `mdm.xref`),
//! those waiting for a person or past a service level, and the decisions
//! (`syncline customers approve|reject|merge`).
//!
//! Owns: reading the accounts' state, checking a decision against it before it is sent (so an
//! operator hears at once that an account moved on), and writing the decision to the decisions
//! topic. Must not: change an account's state itself: the governance worker applies a decision
//! in its own transaction, where the account's records are in order.

use std::time::Duration;

use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use serde::Serialize;

use crate::config::{KafkaConfig, Topology, WorkerConfig};
use crate::kafka::clients;
use crate::schema::canonical::GovernanceState;
use crate::transforms::governance::Rules;
use crate::transforms::governance::decision::{Action, Decision};
use crate::xref::{GovernedAccount, XrefTable};

const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum CustomersError {
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("no worker of the topology runs transform `account_governance`: customer governance is off")]
    NoGovernance,
    #[error("account {0} is not governed (no proposal seen on the cross-reference yet)")]
    Unknown(String),
    #[error("account {account} is {state}: {what}")]
    NotApplicable {
        account: String,
        state: &'static str,
        what: String,
    },
    #[error("cannot encode the decision: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The governance worker of a topology and its rules.
pub fn governance(t: &Topology) -> Result<(&WorkerConfig, Rules), CustomersError> {
    let w = t
        .workers
        .iter()
        .find(|w| w.transform == "account_governance")
        .ok_or(CustomersError::NoGovernance)?;
    Ok((w, w.governance.clone().unwrap_or_default()))
}

/// Every committed entry of the cross-reference topic, as the workers' table holds it.
pub async fn read(cfg: &KafkaConfig, xref_topic: &str) -> Result<XrefTable, CustomersError> {
    let ends = clients::end_offsets(cfg, &[xref_topic], TIMEOUT).await?;
    let from = ends.keys().map(|k| (k.clone(), 0)).collect();
    let mut table = XrefTable::default();
    for m in clients::read_committed_since(cfg, &from, TIMEOUT).await? {
        let key = m.key().and_then(|k| std::str::from_utf8(k).ok()).unwrap_or_default();
        // Entries the feed would skip are skipped here too (the feed logs them).
        let _ = table.apply(key, m.payload());
    }
    Ok(table)
}

/// Accounts waiting for a person (VALIDATED, DUPLICATE_SUSPECTED, CREDIT_REVIEW), oldest first.
pub fn pending(table: &XrefTable) -> Vec<&GovernedAccount> {
    let mut out: Vec<_> = table.governed().filter(|g| g.state.in_review()).collect();
    out.sort_by_key(|g| g.state_at);
    out
}

/// An account past a service level: it entered `from` and has not reached `to` in time.
#[derive(Debug, Clone, Serialize)]
pub struct Stuck {
    pub account_id: String,
    pub state: &'static str,
    pub transition: String,
    pub entered_at: i64,
    pub waiting_ms: i64,
    pub service_level_ms: i64,
}

/// Accounts past a service level of `rules` at `now`, longest waiting first.
pub fn stuck(table: &XrefTable, rules: &Rules, now: i64) -> Vec<Stuck> {
    let mut out = Vec::new();
    for g in table.governed() {
        if matches!(g.state, GovernanceState::Active | GovernanceState::Rejected) {
            continue;
        }
        for (transition, level) in &rules.service_levels {
            let Some((from, to)) = transition
                .split_once("->")
                .and_then(|(a, b)| Some((GovernanceState::parse(a.trim())?, GovernanceState::parse(b.trim())?)))
            else {
                continue;
            };
            let reached = g.entered(to).is_some_and(|t| g.entered(from).is_some_and(|f| t >= f));
            let Some(entered) = g.entered(from) else { continue };
            let waiting = now - entered;
            if !reached && waiting > level.as_millis() as i64 {
                out.push(Stuck {
                    account_id: g.salesforce_id.clone(),
                    state: g.state.name(),
                    transition: transition.clone(),
                    entered_at: entered,
                    waiting_ms: waiting,
                    service_level_ms: level.as_millis() as i64,
                });
            }
        }
    }
    out.sort_by_key(|s| std::cmp::Reverse(s.waiting_ms));
    out
}

/// Checks `decision` against the account's current state and writes it to the decisions topic.
/// `Ok(false)`: the account already is where the decision would take it (nothing sent).
pub async fn decide(
    cfg: &KafkaConfig,
    table: &XrefTable,
    rules: &Rules,
    mut decision: Decision,
) -> Result<bool, CustomersError> {
    use crate::xref::{XrefEntry, XrefLookup};
    let Some(XrefEntry::Governance(g)) = table.get(&crate::xref::reference("governance", &decision.account_id)) else {
        return Err(CustomersError::Unknown(decision.account_id));
    };
    let refuse = |what: &str| CustomersError::NotApplicable {
        account: decision.account_id.clone(),
        state: g.state.name(),
        what: what.to_string(),
    };
    let done = match decision.decision {
        Action::Approve => matches!(
            g.state,
            GovernanceState::Approved | GovernanceState::Requested | GovernanceState::Active
        ),
        Action::Reject => g.state == GovernanceState::Rejected,
        Action::Merge => g.state == GovernanceState::Active,
    };
    if done {
        return Ok(false);
    }
    match decision.decision {
        Action::Approve if !g.state.in_review() => return Err(refuse("only an account in review is approved")),
        Action::Reject if matches!(g.state, GovernanceState::Requested | GovernanceState::Active) => {
            return Err(refuse("its CustomerMaster is with the ERP"));
        }
        Action::Merge if !(g.state.in_review() || g.state == GovernanceState::Proposed) => {
            return Err(refuse("only an account in review is merged"));
        }
        Action::Merge => {
            let into = decision.into.clone().unwrap_or_default();
            let survivor_is_customer = match table.get(&crate::xref::reference("account", &into)) {
                Some(XrefEntry::Account { .. }) => true,
                _ => matches!(table.get(&crate::xref::reference("governance", &into)),
                    Some(XrefEntry::Governance(s)) if s.state == GovernanceState::Active && s.erp_customer_id.is_some()),
            };
            if !survivor_is_customer {
                return Err(refuse(&format!("account `{into}` is no ERP customer to merge into")));
            }
        }
        _ => {}
    }
    decision.version = g.version;
    let value = serde_json::to_vec(&decision)?;
    let producer = clients::plain_producer(cfg)?;
    producer
        .send(
            FutureRecord::to(&rules.decisions_topic)
                .key(decision.account_id.as_bytes())
                .payload(&value),
            TIMEOUT,
        )
        .await
        .map_err(|(e, _)| e)?;
    Ok(true)
}

/// One account as `customers show` prints it.
pub fn render(g: &GovernedAccount) -> String {
    let mut out = format!(
        "account {}  {}  (version {}, since {})\n",
        g.salesforce_id,
        g.state.name(),
        g.version,
        time_text(g.state_at)
    );
    let d = &g.data;
    let billing = d.billing_address.clone().unwrap_or_default();
    out.push_str(&format!(
        "  name {}  tax id {}  legal entity {}  billing {} {} {}\n",
        d.name.as_deref().unwrap_or("-"),
        d.tax_id.as_deref().unwrap_or("-"),
        g.legal_entity.as_deref().unwrap_or("-"),
        billing.postal_code.as_deref().unwrap_or(""),
        billing.street.as_deref().unwrap_or(""),
        billing.country.as_deref().unwrap_or(""),
    ));
    if let Some(c) = &g.erp_customer_id {
        out.push_str(&format!(
            "  ERP customer {c} on {}\n",
            g.erp_instance.as_deref().unwrap_or("-")
        ));
    }
    for r in &g.reasons {
        out.push_str(&format!("  reason {}: {}\n", r.code, r.message));
    }
    for t in &g.history {
        out.push_str(&format!(
            "  {}  {} -> {}  by {}{}\n",
            time_text(t.at),
            t.from.name(),
            t.to.name(),
            t.by,
            t.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
        ));
    }
    out
}

fn time_text(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::canonical::GovernanceTransition;

    fn account(id: &str, state: GovernanceState, history: &[(GovernanceState, i64)]) -> GovernedAccount {
        GovernedAccount {
            version: history.len() as i64,
            state,
            state_at: history.last().map(|h| h.1).unwrap_or_default(),
            history: history
                .iter()
                .map(|(to, at)| GovernanceTransition {
                    from: GovernanceState::Unknown,
                    to: *to,
                    by: "test".into(),
                    at: *at,
                    reason: None,
                })
                .collect(),
            ..GovernedAccount::new(id)
        }
    }

    #[test]
    fn an_account_is_stuck_once_it_waited_past_the_service_level_and_not_before() {
        use GovernanceState as S;
        let mut table = XrefTable::default();
        let hour = 3_600_000;
        for g in [
            account(
                "001OLD",
                S::DuplicateSuspected,
                &[(S::Proposed, 0), (S::DuplicateSuspected, 1)],
            ),
            account("001NEW", S::CreditReview, &[(S::Proposed, 20 * hour)]),
            account("001DONE", S::Requested, &[(S::Proposed, 0), (S::Approved, hour)]),
        ] {
            let e = crate::xref::XrefEntry::Governance(Box::new(g));
            table
                .apply(&e.reference(), Some(&serde_json::to_vec(&e).unwrap()))
                .unwrap();
        }
        let rules: Rules = toml::from_str(r#"service_levels = { "PROPOSED->APPROVED" = "1d" }"#).unwrap();
        let stuck = stuck(&table, &rules, 25 * hour);
        assert_eq!(
            stuck.iter().map(|s| s.account_id.as_str()).collect::<Vec<_>>(),
            ["001OLD"]
        );
        assert_eq!(pending(&table).len(), 2);
    }
}
