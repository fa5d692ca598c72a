//! Customer master governance: a Salesforce account becomes an ERP customer only through an
//! explicit, audited lifecycle — PROPOSED → VALIDATED → (DUPLICATE_SUSPECTED | CREDIT_REVIEW)
//! → APPROVED → REQUESTED → ACTIVE, or REJECTED — each transition with who decided and when.
//!
//! Owns: the lifecycle. Three inputs drive it, told apart by their shape: Account change events
//! (propose, re-check the fields that matter, plain updates), operators' decisions (the
//! decisions topic) and the ERP's answer on `mdm.xref` (an `account:` entry: ACTIVE). The state
//! is a `governance:<account>` entry on `mdm.xref`, written in the record's transaction and read
//! back through the batch (`Transform::reads_own_writes`). A `CustomerMaster` leaves only from
//! APPROVED, to the ERP of the assigned legal entity; every change of state is an
//! `AccountGovernance` record for Salesforce. Must not: send anything itself or read any state
//! but the cross-reference it is given.
//!
//! Why this file is ~560 lines: the lifecycle's three entry points share its transition and
//! output helpers; split apart, each transition rule would be read without the others.

pub mod checks;
pub mod decision;
pub mod rules;
pub mod tax_id;

use serde_json::Value;

use crate::adapters::salesforce::{self, SfEvent};
use crate::adapters::{RawRecord, json};
use crate::failure::Failure;
use crate::schema::canonical::{
    AccountGovernance as GovernanceRecord, Address, CanonicalRecord, ChangeType, CustomerMaster, GovernanceReason,
    GovernanceState as S, GovernanceTransition,
};
use crate::xref::{self, AccountData, GovernedAccount, KnownCustomer, XrefEntry, XrefLookup};

use super::{Context, Emitted, Source, Transform, Transformed, currency, meta};
use decision::{Action, Decision};
pub use rules::Rules;

/// Transitions kept per account (the oldest go first; the outputs keep every one).
const HISTORY: usize = 50;

/// The Account fields whose change sends an active customer through the checks again.
fn governed_field(rules: &Rules, field: &str) -> bool {
    field == "Tax_Id__c"
        || field == "Legal_Entity__c"
        || field == rules.credit_limit_field
        || field.starts_with("Billing")
}

pub struct AccountGovernance {
    pub rules: Rules,
}

/// Where this event came from, for the outputs' lineage.
struct Origin {
    key: String,
    system: &'static str,
    instance: String,
    causation: String,
    at: i64,
    changed_fields: Vec<String>,
}

/// One account being moved: the working copy and the transitions made on it.
struct Step {
    g: GovernedAccount,
    transitions: Vec<GovernanceTransition>,
    at: i64,
    customer_master: Option<ChangeType>,
    /// Written besides the state: the `account:` link of a merged account.
    link: Option<XrefEntry>,
}

impl Step {
    fn new(g: GovernedAccount, at: i64) -> Self {
        Self {
            g,
            transitions: Vec::new(),
            at,
            customer_master: None,
            link: None,
        }
    }

    fn go(&mut self, to: S, by: &str, reason: Option<String>) {
        let t = GovernanceTransition {
            from: self.g.state,
            to,
            by: by.to_string(),
            at: self.at,
            reason,
        };
        self.g.state = to;
        self.g.state_at = self.at;
        self.g.history.push(t.clone());
        if self.g.history.len() > HISTORY {
            self.g.history.remove(0);
        }
        self.transitions.push(t);
    }

    /// APPROVED, then the request to the ERP; an account that already is an ERP customer (a
    /// reviewed change) is active again at once.
    fn approve(&mut self, by: &str, reason: Option<String>) {
        self.go(S::Approved, by, reason);
        let known = self.g.erp_customer_id.is_some();
        self.customer_master = Some(if known { ChangeType::Update } else { ChangeType::Create });
        self.go(S::Requested, "syncline", None);
        if known {
            self.go(S::Active, "rule:known_customer", None);
        }
        self.g.reasons.clear();
    }
}

fn codes(reasons: &[GovernanceReason]) -> Option<String> {
    (!reasons.is_empty()).then(|| reasons.iter().map(|r| r.code.as_str()).collect::<Vec<_>>().join(","))
}

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

/// A field of `incoming` replaces the held one; a field the event nulled is cleared.
fn merge<T: Clone>(held: &mut Option<T>, incoming: Option<T>, nulled: bool) {
    if incoming.is_some() {
        *held = incoming;
    } else if nulled {
        *held = None;
    }
}

/// A governed account's state, or a known ERP customer nobody governed yet (an account that
/// was a customer before governance started) as ACTIVE.
fn current(account_id: &str, known: &dyn XrefLookup) -> Option<GovernedAccount> {
    if let Some(XrefEntry::Governance(g)) = known.get(&xref::reference("governance", account_id)) {
        return Some((**g).clone());
    }
    match known.get(&xref::reference("account", account_id)) {
        Some(XrefEntry::Account {
            erp_customer_id,
            erp_instance,
            payment_terms,
            ..
        }) => Some(GovernedAccount {
            state: S::Active,
            data: AccountData {
                payment_terms: payment_terms.clone(),
                ..AccountData::default()
            },
            erp_customer_id: Some(erp_customer_id.clone()),
            erp_instance: erp_instance.clone(),
            ..GovernedAccount::new(account_id)
        }),
        _ => None,
    }
}

/// An `mdm.xref` record (the worker reads the cross-reference topic for the ERP's answers):
/// its entry, or `None` for anything else.
fn xref_record(raw: &RawRecord<'_>) -> Option<Option<XrefEntry>> {
    let key = std::str::from_utf8(raw.key?).ok()?;
    let prefix = key.split_once(':')?.0;
    if !matches!(prefix, "account" | "governance" | "product" | "uom" | "document") {
        return None;
    }
    Some(raw.payload.and_then(|p| serde_json::from_slice::<XrefEntry>(p).ok()))
}

impl AccountGovernance {
    /// Runs the checks and moves the account from PROPOSED to where they lead.
    fn evaluate(&self, step: &mut Step, known: &dyn XrefLookup) {
        let f = checks::run(&step.g.salesforce_id, &step.g.data, &self.rules, known);
        step.g.legal_entity = f.legal_entity.clone();
        if let Some(t) = f.tax_id {
            step.g.data.tax_id = Some(t);
        }
        if !f.invalid.is_empty() {
            let by = format!("rule:{}", f.invalid[0].code.to_ascii_lowercase());
            step.g.reasons = f.invalid;
            step.go(S::Rejected, &by, codes(&step.g.reasons));
            return;
        }
        step.go(S::Validated, "rule:checks", None);
        step.g.credit_review_due = !f.credit.is_empty();
        step.g.reasons = f.duplicates.iter().chain(&f.credit).cloned().collect();
        if !f.duplicates.is_empty() {
            step.go(S::DuplicateSuspected, "rule:duplicates", codes(&f.duplicates));
        } else if !f.credit.is_empty() {
            step.g.credit_review_due = false;
            step.go(S::CreditReview, "rule:credit_review", codes(&f.credit));
        } else if self.rules.auto_approve {
            step.approve("rule:auto_approve", None);
        }
    }

    fn account_change(&self, raw: &RawRecord<'_>, ctx: &Context<'_>) -> Result<Transformed, Failure> {
        let event = salesforce::parse(raw)?;
        let Some(header) = &event.change else {
            return Err(Failure::business(
                "UNKNOWN_EVENT_TYPE",
                "account governance reads Account change events",
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
        let credit_limit = match event.field(&self.rules.credit_limit_field) {
            Some(v) => Some(
                json::dec::<2>(Some(v), &self.rules.credit_limit_field, "INVALID_AMOUNT")?
                    .map(|d| d.to_string())
                    .unwrap_or_default(),
            ),
            None => None,
        };
        let by = format!("salesforce:{}", header.commit_user.as_deref().unwrap_or("unknown"));
        let origin = Origin {
            key: format!("salesforce:{}", event.identity()?),
            system: "salesforce",
            instance: raw.header_str("sf_org_id").unwrap_or("salesforce").to_string(),
            causation: header
                .transaction_key
                .clone()
                .unwrap_or_else(|| event.identity().unwrap_or_default()),
            at: event.occurred_at,
            changed_fields: header.changed_fields.clone(),
        };
        let held = current(&account_id, ctx.xref);
        let fresh = held.is_none() || change_type == ChangeType::Create;
        let mut step = Step::new(
            held.unwrap_or_else(|| GovernedAccount::new(&account_id)),
            event.occurred_at,
        );
        let nulled = |f: &str| header.nulled_fields.iter().any(|n| n == f);
        let d = &mut step.g.data;
        merge(&mut d.name, event.text("Name")?, nulled("Name"));
        merge(&mut d.tax_id, event.text("Tax_Id__c")?, nulled("Tax_Id__c"));
        merge(&mut d.currency, currency, nulled("CurrencyIsoCode"));
        merge(
            &mut d.payment_terms,
            event.text("Payment_Terms__c")?,
            nulled("Payment_Terms__c"),
        );
        merge(
            &mut d.legal_entity,
            event.text("Legal_Entity__c")?,
            nulled("Legal_Entity__c"),
        );
        merge(
            &mut d.billing_address,
            address(&event, "Billing")?,
            nulled("BillingAddress"),
        );
        merge(
            &mut d.shipping_address,
            address(&event, "Shipping")?,
            nulled("ShippingAddress"),
        );
        merge(
            &mut d.credit_limit,
            credit_limit,
            nulled(&self.rules.credit_limit_field),
        );

        let governed = fresh
            || header
                .changed_fields
                .iter()
                .chain(&header.nulled_fields)
                .any(|f| governed_field(&self.rules, f));
        match (change_type, step.g.state) {
            (ChangeType::Delete, S::Active) => step.customer_master = Some(ChangeType::Delete),
            (ChangeType::Delete, S::Rejected) => {}
            (ChangeType::Delete, _) => step.go(S::Rejected, &by, Some("account deleted in Salesforce".into())),
            // The request is with the ERP: what changes meanwhile follows it as an update.
            (_, S::Requested) => step.customer_master = Some(ChangeType::Update),
            (_, S::Active) if !governed => step.customer_master = Some(ChangeType::Update),
            (_, _) if governed || fresh => {
                step.go(S::Proposed, &by, None);
                self.evaluate(&mut step, ctx.xref);
            }
            // A change of other fields while the account is reviewed: kept for the request.
            _ => {}
        }
        Ok(self.finish(raw, ctx, &origin, step, true))
    }

    fn decision(&self, raw: &RawRecord<'_>, value: Value, ctx: &Context<'_>) -> Result<Transformed, Failure> {
        let d: Decision = serde_json::from_value(value)
            .map_err(|e| Failure::poison("INVALID_DECISION", format!("not a customer decision: {e}")))?;
        let origin = Origin {
            key: d.idempotency_key(),
            system: "syncline",
            instance: "operator".into(),
            causation: d.idempotency_key(),
            at: d.at,
            changed_fields: vec![],
        };
        let Some(g) = current(&d.account_id, ctx.xref) else {
            return Err(Failure::business(
                "DECISION_UNKNOWN_ACCOUNT",
                format!("account {} is not governed (no proposal seen)", d.account_id),
            ));
        };
        let already = match d.decision {
            Action::Approve => matches!(g.state, S::Approved | S::Requested | S::Active),
            Action::Reject => g.state == S::Rejected,
            Action::Merge => g.state == S::Active,
        };
        if already {
            return Ok(Transformed::nothing(origin.key, d.account_id));
        }
        if d.version != g.version {
            return Err(Failure::business(
                "DECISION_STALE",
                format!(
                    "decided on version {} of account {}, which is at version {} now ({}): look again and decide on what it is",
                    d.version,
                    d.account_id,
                    g.version,
                    g.state.name()
                ),
            ));
        }
        let by = format!("operator:{}", d.by);
        let not_applicable = |what: &str| {
            Failure::business(
                "DECISION_NOT_APPLICABLE",
                format!(
                    "cannot {} account {}: it is {} ({what})",
                    d.decision.name(),
                    d.account_id,
                    g.state.name()
                ),
            )
        };
        let mut step = Step::new(g.clone(), d.at);
        match d.decision {
            Action::Approve if !g.state.in_review() => {
                return Err(not_applicable("only a reviewed account is approved"));
            }
            Action::Approve if g.state == S::DuplicateSuspected && g.credit_review_due => {
                step.g.credit_review_due = false;
                step.g.reasons.retain(|r| r.code.starts_with("CREDIT"));
                step.go(S::CreditReview, &by, d.reason.clone());
            }
            Action::Approve => step.approve(&by, d.reason.clone()),
            Action::Reject if matches!(g.state, S::Requested | S::Active) => {
                return Err(not_applicable("the ERP has the customer"));
            }
            Action::Reject => {
                step.g.reasons = vec![GovernanceReason {
                    code: "REJECTED_BY_OPERATOR".into(),
                    message: d.reason.clone().unwrap_or_else(|| "rejected".into()),
                    candidate_account_id: None,
                    score: None,
                }];
                step.go(S::Rejected, &by, d.reason.clone());
            }
            Action::Merge => {
                if !g.state.in_review() && g.state != S::Proposed {
                    return Err(not_applicable("only a reviewed account is merged"));
                }
                let survivor = d.into.as_deref().unwrap_or_default();
                let Some((customer, instance, terms)) = current(survivor, ctx.xref)
                    .filter(|s| s.state == S::Active)
                    .and_then(|s| s.erp_customer_id.map(|c| (c, s.erp_instance, s.data.payment_terms)))
                else {
                    return Err(not_applicable(&format!(
                        "account `{survivor}` is no ERP customer to merge into"
                    )));
                };
                step.g.erp_customer_id = Some(customer.clone());
                step.g.erp_instance = instance.clone();
                step.g.reasons.clear();
                let billing = step.g.data.billing_address.clone().unwrap_or_default();
                step.link = Some(XrefEntry::Account {
                    salesforce_id: d.account_id.clone(),
                    erp_customer_id: customer,
                    erp_instance: instance,
                    payment_terms: step.g.data.payment_terms.clone().or(terms),
                    known: KnownCustomer {
                        name: step.g.data.name.clone(),
                        tax_id: step.g.data.tax_id.clone(),
                        street: billing.street,
                        postal_code: billing.postal_code,
                        country: billing.country,
                    },
                });
                let why = d.reason.clone().unwrap_or_else(|| format!("merged into {survivor}"));
                step.go(S::Active, &by, Some(why));
            }
        }
        Ok(self.finish(raw, ctx, &origin, step, false))
    }

    /// The ERP's answer: an `account:` entry for an account that waits for one.
    fn erp_answer(&self, raw: &RawRecord<'_>, entry: Option<XrefEntry>, ctx: &Context<'_>) -> Transformed {
        let ignored = Transformed::ignored;
        let Some(XrefEntry::Account {
            salesforce_id,
            erp_customer_id,
            erp_instance,
            payment_terms,
            ..
        }) = entry
        else {
            return ignored();
        };
        let Some(XrefEntry::Governance(g)) = ctx.xref.get(&xref::reference("governance", &salesforce_id)) else {
            return ignored();
        };
        if g.state == S::Active || g.state == S::Rejected {
            return ignored();
        }
        let at = raw.timestamp_ms.unwrap_or(ctx.now_ms);
        let mut step = Step::new((**g).clone(), at);
        step.g.erp_customer_id = Some(erp_customer_id.clone());
        step.g.erp_instance = erp_instance.clone();
        merge(&mut step.g.data.payment_terms, payment_terms, false);
        step.g.reasons.clear();
        let by = format!("erp:{}", erp_instance.as_deref().unwrap_or("mdm"));
        step.go(S::Active, &by, Some(format!("ERP customer {erp_customer_id}")));
        let origin = Origin {
            key: format!("governance:{salesforce_id}:v{}", g.version + 1),
            system: "syncline",
            instance: "mdm".into(),
            causation: format!("account:{salesforce_id}"),
            at,
            changed_fields: vec![],
        };
        self.finish(raw, ctx, &origin, step, false)
    }

    /// The outputs and the state write of one moved account.
    fn finish(
        &self,
        raw: &RawRecord<'_>,
        ctx: &Context<'_>,
        origin: &Origin,
        mut step: Step,
        data_changed: bool,
    ) -> Transformed {
        let account_id = step.g.salesforce_id.clone();
        if step.transitions.is_empty() && step.customer_master.is_none() && !data_changed {
            return Transformed::nothing(origin.key.clone(), account_id);
        }
        step.g.version += 1;
        let source = Source {
            idempotency_key: &origin.key,
            correlation_id: &account_id,
            causation_id: &origin.causation,
            system: origin.system,
            instance: &origin.instance,
            occurred_at: origin.at,
        };
        let g = &step.g;
        let mut outputs = Vec::new();
        if !step.transitions.is_empty() {
            outputs.push(Emitted {
                output: "account_governance",
                record: CanonicalRecord::AccountGovernance(GovernanceRecord {
                    meta: meta(raw, &source, "account_governance", ctx.now_ms),
                    salesforce_account_id: account_id.clone(),
                    state: g.state,
                    state_at: g.state_at,
                    version: g.version,
                    legal_entity: g.legal_entity.clone(),
                    erp_instance: g.erp_instance.clone(),
                    erp_customer_id: g.erp_customer_id.clone(),
                    reasons: g.reasons.clone(),
                    transitions: step.transitions.clone(),
                }),
            });
        }
        if let Some(change_type) = step.customer_master {
            let d = &g.data;
            outputs.push(Emitted {
                output: "customer_master",
                record: CanonicalRecord::CustomerMaster(CustomerMaster {
                    meta: meta(raw, &source, "customer_master", ctx.now_ms),
                    salesforce_account_id: account_id.clone(),
                    erp_customer_id: g.erp_customer_id.clone(),
                    erp_instance: g.erp_instance.clone(),
                    change_type,
                    name: d.name.clone(),
                    legal_entity: g.legal_entity.clone().or_else(|| d.legal_entity.clone()),
                    tax_id: d.tax_id.clone(),
                    currency: d.currency.clone(),
                    payment_terms: d.payment_terms.clone(),
                    billing_address: d.billing_address.clone(),
                    shipping_address: d.shipping_address.clone(),
                    changed_fields: origin.changed_fields.clone(),
                }),
            });
        }
        let mut writes: Vec<XrefEntry> = step.link.take().into_iter().collect();
        writes.push(XrefEntry::Governance(Box::new(step.g)));
        Transformed {
            idempotency_key: origin.key.clone(),
            correlation_id: account_id,
            outputs,
            writes,
            remember: true,
        }
    }
}

impl Transform for AccountGovernance {
    fn apply(&self, raw: &RawRecord<'_>, ctx: &Context<'_>) -> Result<Transformed, Failure> {
        if let Some(entry) = xref_record(raw) {
            return Ok(self.erp_answer(raw, entry, ctx));
        }
        // A decision is a JSON object with a `decision`; anything else is a Salesforce event.
        if let Some(bytes) = raw.payload
            && let Ok(value @ Value::Object(_)) = serde_json::from_slice::<Value>(bytes)
            && value.get("decision").is_some()
        {
            return self.decision(raw, value, ctx);
        }
        self.account_change(raw, ctx)
    }

    fn reads_own_writes(&self) -> bool {
        true
    }
}
