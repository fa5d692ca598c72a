//! The checks a proposed account goes through: tax id, legal entity, duplicate suspicion and
//! credit review. Each finding is a [`GovernanceReason`] with a stable code.
//!
//! Owns: normalising names and addresses for comparison and the order of the checks. Must not:
//! decide the state (the lifecycle in `mod.rs` does) or read anything but the account, the rules
//! and the candidates it is given.

use crate::schema::canonical::GovernanceReason;
use crate::xref::{AccountData, KnownCustomer, XrefEntry, XrefLookup};

use super::rules::Rules;
use super::tax_id;

/// What the checks found for one account.
#[derive(Debug, Default)]
pub struct Findings {
    /// Reasons to reject (a tax id that cannot be one, no legal entity).
    pub invalid: Vec<GovernanceReason>,
    pub duplicates: Vec<GovernanceReason>,
    pub credit: Vec<GovernanceReason>,
    pub legal_entity: Option<String>,
    /// The tax id as normalised by its rule.
    pub tax_id: Option<String>,
}

fn reason(code: &str, message: String) -> GovernanceReason {
    GovernanceReason {
        code: code.into(),
        message,
        candidate_account_id: None,
        score: None,
    }
}

/// Legal forms dropped before names are compared ("Acme GmbH" and "ACME" are one name).
const LEGAL_FORMS: &[&str] = &[
    "gmbh",
    "ag",
    "kg",
    "ohg",
    "ug",
    "se",
    "co",
    "inc",
    "llc",
    "ltd",
    "limited",
    "plc",
    "corp",
    "corporation",
    "company",
    "sa",
    "sas",
    "sarl",
    "sasu",
    "eurl",
    "bv",
    "nv",
    "srl",
    "spa",
    "ab",
    "oy",
    "as",
    "aps",
];

/// Lower case, letters and digits only, legal forms dropped, words single-spaced.
pub fn normalise_name(name: &str) -> String {
    // Dots go without a trace, so "G.m.b.H." is the legal form "gmbh".
    let lowered: String = name
        .chars()
        .filter(|c| *c != '.')
        .map(|c| match c {
            'ß' => 's',
            c if c.is_alphanumeric() => c,
            _ => ' ',
        })
        .flat_map(char::to_lowercase)
        .collect();
    lowered
        .split_whitespace()
        .filter(|w| !LEGAL_FORMS.contains(w))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Postal code and street, compared without case, spaces and punctuation, street suffixes
/// unified ("Friedrichstr. 10" = "Friedrichstraße 10").
pub fn normalise_address(postal_code: &str, street: &str) -> String {
    let street = street
        .to_lowercase()
        .replace("straße", "str")
        .replace("strasse", "str")
        .replace("street", "st")
        .replace("avenue", "ave");
    let keep = |s: &str| s.chars().filter(|c| c.is_alphanumeric()).collect::<String>();
    format!("{}|{}", keep(&postal_code.to_lowercase()), keep(&street))
}

/// A candidate's comparable data and its Salesforce id.
struct Candidate<'a> {
    id: &'a str,
    name: Option<&'a str>,
    tax_id: Option<&'a str>,
    street: Option<&'a str>,
    postal_code: Option<&'a str>,
    country: Option<&'a str>,
}

fn candidate(e: &XrefEntry) -> Option<Candidate<'_>> {
    match e {
        XrefEntry::Account {
            salesforce_id,
            known:
                KnownCustomer {
                    name,
                    tax_id,
                    street,
                    postal_code,
                    country,
                },
            ..
        } => Some(Candidate {
            id: salesforce_id,
            name: name.as_deref(),
            tax_id: tax_id.as_deref(),
            street: street.as_deref(),
            postal_code: postal_code.as_deref(),
            country: country.as_deref(),
        }),
        XrefEntry::Governance(g) if g.state != crate::schema::canonical::GovernanceState::Rejected => {
            let billing = g.data.billing_address.as_ref();
            Some(Candidate {
                id: &g.salesforce_id,
                name: g.data.name.as_deref(),
                tax_id: g.data.tax_id.as_deref(),
                street: billing.and_then(|a| a.street.as_deref()),
                postal_code: billing.and_then(|a| a.postal_code.as_deref()),
                country: billing.and_then(|a| a.country.as_deref()),
            })
        }
        _ => None,
    }
}

/// Known customers and governed accounts `account` may be a duplicate of, strongest match per
/// candidate: the same tax id, the same postal code and street, or a name at least
/// `rules.duplicates.name_similarity` alike (within one country when both are known).
pub fn duplicates(
    account_id: &str,
    data: &AccountData,
    rules: &Rules,
    known: &dyn XrefLookup,
) -> Vec<GovernanceReason> {
    let billing = data.billing_address.as_ref();
    let country = billing.and_then(|a| a.country.as_deref());
    let name = data.name.as_deref().map(normalise_name).filter(|n| !n.is_empty());
    let tax = data.tax_id.as_deref().map(tax_id::normalise).filter(|t| !t.is_empty());
    let address = billing.and_then(|a| match (&a.postal_code, &a.street) {
        (Some(p), Some(s)) => Some(normalise_address(p, s)),
        _ => None,
    });
    let mut found = Vec::new();
    known.for_each_account(&mut |e| {
        let Some(c) = candidate(e).filter(|c| c.id != account_id) else {
            return;
        };
        let exact = |code: &str, message: String| GovernanceReason {
            candidate_account_id: Some(c.id.to_string()),
            score: Some(1.0),
            ..reason(code, message)
        };
        if let (Some(t), Some(ct)) = (&tax, c.tax_id)
            && *t == tax_id::normalise(ct)
        {
            found.push(exact(
                "DUPLICATE_TAX_ID",
                format!("tax id {t} is the tax id of account {}", c.id),
            ));
            return;
        }
        if let (Some(a), Some(p), Some(s)) = (&address, c.postal_code, c.street)
            && *a == normalise_address(p, s)
        {
            found.push(exact(
                "DUPLICATE_ADDRESS",
                format!("billing address {p} {s} is the address of account {}", c.id),
            ));
            return;
        }
        let same_country = match (country, c.country) {
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
            _ => true,
        };
        if let (Some(n), Some(cn), true) = (&name, c.name, same_country) {
            let score = strsim::jaro_winkler(n, &normalise_name(cn));
            if score >= rules.duplicates.name_similarity {
                found.push(GovernanceReason {
                    score: Some((score * 1000.0).round() / 1000.0),
                    ..exact(
                        "DUPLICATE_NAME",
                        format!("name is {score:.2} like `{cn}` (account {})", c.id),
                    )
                });
            }
        }
    });
    // The strongest few are what a person reviews; a name shared by thousands of accounts
    // would otherwise make every state entry carry thousands of reasons.
    found.sort_by(|a, b| b.score.unwrap_or(0.0).total_cmp(&a.score.unwrap_or(0.0)));
    found.truncate(MAX_CANDIDATES);
    found
}

/// Duplicate candidates kept per account, strongest first.
pub const MAX_CANDIDATES: usize = 5;

/// Runs every check on `data` in order: tax id and legal entity (reasons to reject), then
/// duplicates and credit (reasons to review).
pub fn run(account_id: &str, data: &AccountData, rules: &Rules, known: &dyn XrefLookup) -> Findings {
    let mut f = Findings::default();
    let country = data.billing_address.as_ref().and_then(|a| a.country.as_deref());
    match data.tax_id.as_deref().filter(|t| !t.trim().is_empty()) {
        Some(t) => match tax_id::check(t, country) {
            Ok(normalised) => f.tax_id = normalised.or_else(|| Some(t.to_string())),
            Err(e) => f.invalid.push(reason("TAX_ID_INVALID", e.to_string())),
        },
        None if rules.tax_id_required(country) => f.invalid.push(reason(
            "TAX_ID_MISSING",
            format!("accounts billed in {} need a tax id", country.unwrap_or_default()),
        )),
        None => {}
    }
    f.legal_entity = rules.legal_entity(data.legal_entity.as_deref(), country);
    if f.legal_entity.is_none() {
        f.invalid.push(reason(
            "NO_LEGAL_ENTITY",
            format!(
                "no legal entity for billing country `{}` (and the account names none known): add it to [worker.governance.legal_entities]",
                country.unwrap_or("none")
            ),
        ));
    }
    f.duplicates = duplicates(account_id, data, rules, known);
    if let (Some(le), Some(limit)) = (&f.legal_entity, &data.credit_limit)
        && let Some(threshold) = rules.credit_review.get(le)
    {
        let asked = limit.parse::<rust_decimal::Decimal>().ok();
        let allowed = threshold.money().map(|m| m.value());
        let currency = data.currency.as_deref().unwrap_or(&threshold.currency);
        if currency != threshold.currency {
            f.credit.push(reason(
                "CREDIT_CURRENCY_DIFFERS",
                format!(
                    "credit limit {limit} {currency} cannot be compared with {le}'s threshold in {}",
                    threshold.currency
                ),
            ));
        } else if let (Some(a), Some(t)) = (asked, allowed)
            && a > t
        {
            f.credit.push(reason(
                "CREDIT_LIMIT_ABOVE_THRESHOLD",
                format!(
                    "requested credit limit {limit} {currency} is above {le}'s {} {}",
                    threshold.amount, threshold.currency
                ),
            ));
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_compare_without_legal_forms_and_punctuation() {
        assert_eq!(normalise_name("Berliner Pumpenwerk GmbH"), "berliner pumpenwerk");
        assert_eq!(normalise_name("BERLINER PUMPENWERK, G.m.b.H."), "berliner pumpenwerk");
        assert_eq!(
            normalise_address("10117", "Friedrichstr. 10"),
            normalise_address("10117 ", "Friedrichstraße 10")
        );
    }
}
