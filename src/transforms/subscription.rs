//! Subscription lifecycle: an Opportunity closed-won with subscription products →
//! `BillingSchedule` for the ERP (start, term, frequency, the amount of every period). The ERP's
//! billing plan and dunning events come back as `PaymentStatus` (see `erp`, flow
//! `Subscription`), correlated by the Opportunity id.
//!
//! Accepted Salesforce inputs: the `Opportunity_Closed_Won__e` platform event, and Opportunity
//! change events once `StageName` is `Closed Won` (the channel enriched with `AccountId`,
//! `CurrencyIsoCode` and the subscription fields below). Lines are JSON in `Lines__c`:
//! `[{"Product2Id", "Quantity", "UnitPrice", "Subscription": true}]`, where `UnitPrice` of a
//! subscription line is its price per unit per month. One-time lines are the order's business,
//! not the billing plan's; an opportunity without subscription lines emits nothing.
//!
//! Owns: the period arithmetic. Amounts are exact: a period costs the monthly amount times its
//! months (the last period is shorter when the term is not a multiple of the frequency), never a
//! division. Must not: price anything the opportunity does not state.

use chrono::Months;

use crate::adapters::salesforce::SfEvent;
use crate::adapters::{RawRecord, json};
use crate::failure::Failure;
use crate::schema::canonical::{
    BillingFrequency, BillingPeriod, BillingSchedule, CanonicalRecord, date_of, epoch_days,
};
use crate::schema::decimal::{Money, Quantity, UnitPrice};

use super::{Context, SalesforceInput, Transform, Transformed, currency, master_data, meta};

/// The Opportunity stage that starts billing.
pub const STAGE_WON: &str = "Closed Won";
/// Longest term accepted, in months (10 years): longer is a data-entry error, not a contract.
pub const MAX_TERM_MONTHS: i64 = 120;

pub struct OpportunityWon;

struct Names {
    account: &'static str,
    currency: &'static str,
}

const PLATFORM_EVENT: Names = Names {
    account: "Account_Id__c",
    currency: "Currency__c",
};

const OPPORTUNITY_CHANGE: Names = Names {
    account: "AccountId",
    currency: "CurrencyIsoCode",
};

impl Transform for OpportunityWon {
    fn apply(&self, raw: &RawRecord<'_>, ctx: &Context<'_>) -> Result<Transformed, Failure> {
        let input = SalesforceInput::read(raw, "Opportunity", "Opportunity_Id__c", "closed opportunities")?;
        let event = &input.event;
        let names = if input.is_change {
            &OPPORTUNITY_CHANGE
        } else {
            &PLATFORM_EVENT
        };
        let opportunity_id = input.record_id.clone();
        if input.is_change && event.text("StageName")?.as_deref() != Some(STAGE_WON) {
            return Ok(Transformed::nothing(input.idempotency_key, opportunity_id));
        }
        let Some(monthly) = monthly_amount(event)? else {
            return Ok(Transformed::nothing(input.idempotency_key, opportunity_id));
        };
        let account = event.required(names.account)?;
        let currency = event.required(names.currency)?;
        currency::check(&currency)?;
        let customer = master_data::customer(ctx.xref, &account)?;
        let start_date = event
            .date("Subscription_Start_Date__c")?
            .ok_or_else(|| json::missing("Subscription_Start_Date__c"))?;
        let term = term_months(event)?;
        let frequency = frequency(event)?;
        let periods = periods(start_date, term, frequency, monthly)?;
        let mut total = Money::ZERO;
        for p in &periods {
            total = total
                .checked_add(p.amount)
                .map_err(|e| Failure::business("INVALID_AMOUNT", e.to_string()))?;
        }
        let record = BillingSchedule {
            meta: meta(raw, &input.source(raw, &opportunity_id), "billing_schedule", ctx.now_ms),
            opportunity_id: opportunity_id.clone(),
            salesforce_account_id: account,
            erp_customer_id: Some(customer.erp_customer_id.to_string()),
            erp_instance: customer.erp_instance.map(str::to_string),
            start_date,
            term_months: term as i32,
            billing_frequency: frequency,
            currency,
            total_amount: total,
            periods,
        };
        Ok(Transformed::one(
            input.idempotency_key.clone(),
            opportunity_id,
            "billing_schedule",
            CanonicalRecord::BillingSchedule(record),
        ))
    }
}

fn term_months(e: &SfEvent) -> Result<u32, Failure> {
    let term = e
        .dec::<0>("Subscription_Term_Months__c", "INVALID_TERM")?
        .ok_or_else(|| json::missing("Subscription_Term_Months__c"))?;
    let months = i64::try_from(term.value().mantissa()).unwrap_or(i64::MAX);
    if !(1..=MAX_TERM_MONTHS).contains(&months) {
        return Err(Failure::business(
            "INVALID_TERM",
            format!("a subscription term of {term} months is outside 1..{MAX_TERM_MONTHS}"),
        ));
    }
    Ok(months as u32)
}

fn frequency(e: &SfEvent) -> Result<BillingFrequency, Failure> {
    let text = e.required("Billing_Frequency__c")?;
    let normalized: String = text
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    match normalized.as_str() {
        "monthly" => Ok(BillingFrequency::Monthly),
        "quarterly" => Ok(BillingFrequency::Quarterly),
        "semiannual" | "semiannually" | "halfyearly" => Ok(BillingFrequency::SemiAnnual),
        "annual" | "annually" | "yearly" => Ok(BillingFrequency::Annual),
        _ => Err(Failure::business(
            "INVALID_BILLING_FREQUENCY",
            format!("Billing_Frequency__c `{text}` is not Monthly, Quarterly, Semi-Annual or Annual"),
        )),
    }
}

/// The monthly amount of the subscription lines; `None` when the opportunity has none.
fn monthly_amount(e: &SfEvent) -> Result<Option<Money>, Failure> {
    let items = e.array("Lines__c")?.unwrap_or_default();
    let mut monthly: Option<Money> = None;
    for (i, item) in items.iter().enumerate() {
        let at = |f: &str| format!("Lines__c[{i}].{f}");
        if !json::opt_bool(item, "Subscription")?.unwrap_or(false) {
            continue;
        }
        let qty: Quantity = json::req_dec(item, "Quantity", "INVALID_QUANTITY")?;
        let price: UnitPrice = json::req_dec(item, "UnitPrice", "INVALID_AMOUNT")?;
        if !qty.is_positive() || price.value().is_sign_negative() {
            return Err(Failure::business(
                "INVALID_QUANTITY",
                format!(
                    "{} {qty} x {} {price}: a subscription needs a positive quantity and price",
                    at("Quantity"),
                    at("UnitPrice")
                ),
            ));
        }
        let line = Money::checked_mul(qty, price)
            .map_err(|err| Failure::business("AMOUNT_PRECISION", format!("{}: {err}", at("UnitPrice"))))?;
        let sum = monthly
            .unwrap_or(Money::ZERO)
            .checked_add(line)
            .map_err(|err| Failure::business("INVALID_AMOUNT", err.to_string()))?;
        monthly = Some(sum);
    }
    Ok(monthly)
}

/// Consecutive periods from `start` covering `term` months.
fn periods(start: i32, term: u32, frequency: BillingFrequency, monthly: Money) -> Result<Vec<BillingPeriod>, Failure> {
    let step = frequency.months().unwrap_or(1);
    let start_date =
        date_of(start).ok_or_else(|| Failure::poison("INVALID_DATE", format!("start date {start} is out of range")))?;
    let month = |n: u32| {
        start_date
            .checked_add_months(Months::new(n))
            .ok_or_else(|| Failure::poison("INVALID_DATE", "the subscription runs past the calendar"))
    };
    let mut out = Vec::new();
    let mut from = 0;
    while from < term {
        let months = step.min(term - from);
        let amount = monthly
            .times(months)
            .map_err(|e| Failure::business("INVALID_AMOUNT", e.to_string()))?;
        let next = month(from + months)?;
        out.push(BillingPeriod {
            period_number: out.len() as i32 + 1,
            period_start: epoch_days(month(from)?),
            period_end: epoch_days(next) - 1,
            amount,
        });
        from += months;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn money(s: &str) -> Money {
        s.parse().unwrap()
    }

    #[test]
    fn periods_cover_the_term_exactly() {
        let start = epoch_days(chrono::NaiveDate::from_ymd_opt(2026, 1, 31).unwrap());
        let p = periods(start, 12, BillingFrequency::Quarterly, money("100.10")).unwrap();
        assert_eq!(p.len(), 4);
        assert!(p.iter().all(|p| p.amount == money("300.30")));
        assert_eq!(date_of(p[0].period_start).unwrap().to_string(), "2026-01-31");
        assert_eq!(date_of(p[0].period_end).unwrap().to_string(), "2026-04-29");
        assert_eq!(date_of(p[1].period_start).unwrap().to_string(), "2026-04-30");
        assert_eq!(date_of(p[3].period_end).unwrap().to_string(), "2027-01-30");
    }

    #[test]
    fn a_short_last_period_is_billed_for_its_months() {
        let start = epoch_days(chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap());
        let p = periods(start, 14, BillingFrequency::Annual, money("50.00")).unwrap();
        assert_eq!(
            p.iter().map(|p| p.amount).collect::<Vec<_>>(),
            vec![money("600.00"), money("100.00")]
        );
        assert_eq!(date_of(p[1].period_end).unwrap().to_string(), "2028-01-31");
    }
}
