//! Tax registration numbers: the EU VAT number formats (the VIES format table), the check
//! digits of the German, French and British VAT numbers, and the US employer identification
//! number (EIN).
//!
//! Owns: normalising a number (spaces, dots, dashes out; the country prefix added when the
//! billing country implies it) and judging it. Must not: call a registry (VIES, HMRC or the
//! IRS answer whether a number is *registered*; this says whether it can be one).

use std::sync::OnceLock;

use regex::Regex;

/// What is wrong with a tax id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaxIdError {
    #[error("`{number}` is not a {country} tax id: expected {expected}")]
    Format {
        number: String,
        country: String,
        expected: &'static str,
    },
    #[error("`{number}` fails the {country} check digit")]
    CheckDigit { number: String, country: String },
    #[error("`{number}`: prefix {prefix} is not an EIN prefix the IRS assigns")]
    EinPrefix { number: String, prefix: String },
}

/// VAT number formats after the country prefix, per EU member state (and XI, Northern Ireland,
/// and GB), as the European Commission's VIES documents them.
const EU_FORMATS: &[(&str, &str, &str)] = &[
    ("AT", r"U\d{8}", "U and 8 digits"),
    ("BE", r"[01]\d{9}", "10 digits starting 0 or 1"),
    ("BG", r"\d{9,10}", "9 or 10 digits"),
    ("CY", r"\d{8}[A-Z]", "8 digits and a letter"),
    ("CZ", r"\d{8,10}", "8 to 10 digits"),
    ("DE", r"\d{9}", "9 digits"),
    ("DK", r"\d{8}", "8 digits"),
    ("EE", r"\d{9}", "9 digits"),
    ("EL", r"\d{9}", "9 digits"),
    (
        "ES",
        r"[0-9A-Z]\d{7}[0-9A-Z]",
        "a letter or digit, 7 digits, a letter or digit",
    ),
    ("FI", r"\d{8}", "8 digits"),
    (
        "FR",
        r"[0-9A-HJ-NP-Z]{2}\d{9}",
        "a 2-character key and the 9-digit SIREN",
    ),
    ("HR", r"\d{11}", "11 digits"),
    ("HU", r"\d{8}", "8 digits"),
    (
        "IE",
        r"\d{7}[A-W][A-IW]?|\d[A-Z+*]\d{5}[A-W]",
        "7 digits and 1 or 2 letters",
    ),
    ("IT", r"\d{11}", "11 digits"),
    ("LT", r"\d{9}|\d{12}", "9 or 12 digits"),
    ("LU", r"\d{8}", "8 digits"),
    ("LV", r"\d{11}", "11 digits"),
    ("MT", r"\d{8}", "8 digits"),
    ("NL", r"\d{9}B\d{2}", "9 digits, B and 2 digits"),
    ("PL", r"\d{10}", "10 digits"),
    ("PT", r"\d{9}", "9 digits"),
    ("RO", r"\d{2,10}", "2 to 10 digits"),
    ("SE", r"\d{10}01", "12 digits ending 01"),
    ("SI", r"\d{8}", "8 digits"),
    ("SK", r"\d{10}", "10 digits"),
    (
        "XI",
        r"\d{9}|\d{12}|GD\d{3}|HA\d{3}",
        "9 or 12 digits, or GD/HA and 3 digits",
    ),
    (
        "GB",
        r"\d{9}|\d{12}|GD\d{3}|HA\d{3}",
        "9 or 12 digits, or GD/HA and 3 digits",
    ),
];

fn formats() -> &'static [(&'static str, Regex, &'static str)] {
    static COMPILED: OnceLock<Vec<(&'static str, Regex, &'static str)>> = OnceLock::new();
    COMPILED.get_or_init(|| {
        EU_FORMATS
            .iter()
            .filter_map(|(c, pattern, expected)| {
                Regex::new(&format!("^(?:{pattern})$")).ok().map(|r| (*c, r, *expected))
            })
            .collect()
    })
}

/// The VAT prefix of a billing country (Greece's is EL).
fn vat_prefix(country: &str) -> &str {
    if country.eq_ignore_ascii_case("GR") {
        "EL"
    } else {
        country
    }
}

/// Upper case, without spaces, dots, dashes and slashes.
pub fn normalise(number: &str) -> String {
    number
        .chars()
        .filter(|c| !matches!(c, ' ' | '.' | '-' | '/' | ','))
        .flat_map(char::to_uppercase)
        .collect()
}

/// Whether rules exist for tax ids of `country` (an EU state, GB, XI or US).
pub fn known_country(country: &str) -> bool {
    country.eq_ignore_ascii_case("US")
        || formats()
            .iter()
            .any(|(c, _, _)| c.eq_ignore_ascii_case(vat_prefix(country)))
}

/// Checks `number` for an account billed in `country` (ISO 3166-1 alpha-2). A number with a
/// VAT prefix of another state is checked as that state's. Returns the normalised number, or
/// `Ok(None)` when no rule covers the country (nothing to check).
pub fn check(number: &str, country: Option<&str>) -> Result<Option<String>, TaxIdError> {
    let n = normalise(number);
    let prefixed = formats()
        .iter()
        .find(|(c, r, _)| n.starts_with(c) && r.is_match(&n[2..]));
    if let Some((c, _, _)) = prefixed {
        return vat(&n, c).map(Some);
    }
    match country.map(str::to_ascii_uppercase).as_deref() {
        Some("US") => ein(&n).map(Some),
        Some(c) => {
            let prefix = vat_prefix(c);
            match formats().iter().find(|(f, _, _)| *f == prefix) {
                Some((_, rule, expected)) => {
                    let digits = n.strip_prefix(prefix).unwrap_or(&n);
                    if !rule.is_match(digits) {
                        return Err(TaxIdError::Format {
                            number: number.to_string(),
                            country: prefix.to_string(),
                            expected,
                        });
                    }
                    vat(&format!("{prefix}{digits}"), prefix).map(Some)
                }
                None => Ok(None),
            }
        }
        None => Ok(None),
    }
}

/// A VAT number whose format matched: the check digits where the state publishes them.
fn vat(n: &str, country: &str) -> Result<String, TaxIdError> {
    let body = &n[2..];
    let ok = match country {
        "DE" => de_check(body),
        "FR" => fr_check(body),
        "GB" | "XI" => gb_check(body),
        _ => true,
    };
    if ok {
        Ok(n.to_string())
    } else {
        Err(TaxIdError::CheckDigit {
            number: n.to_string(),
            country: country.to_string(),
        })
    }
}

fn digits(s: &str) -> Vec<u32> {
    s.chars().filter_map(|c| c.to_digit(10)).collect()
}

/// German USt-IdNr.: ISO 7064 MOD 11,10 over the first 8 digits gives the 9th.
fn de_check(body: &str) -> bool {
    let d = digits(body);
    if d.len() != 9 {
        return false;
    }
    let mut product = 10;
    for digit in &d[..8] {
        let mut sum = (digit + product) % 10;
        if sum == 0 {
            sum = 10;
        }
        product = (2 * sum) % 11;
    }
    let check = (11 - product) % 10;
    check == d[8]
}

/// French numéro de TVA: a numeric key is (12 + 3 x (SIREN mod 97)) mod 97. Keys with letters
/// (issued to some foreign companies) follow an unpublished rule: the format is all that is
/// checked for them.
fn fr_check(body: &str) -> bool {
    let (key, siren) = body.split_at(2);
    let Ok(siren) = siren.parse::<u64>() else {
        return false;
    };
    match key.parse::<u64>() {
        Ok(key) => key == (12 + 3 * (siren % 97)) % 97,
        Err(_) => true,
    }
}

/// UK VAT registration number: weights 8..2 over the first 7 digits plus the last two as a
/// number is divisible by 97 (older numbers) or is after adding 55 (numbers since 2010).
/// Government departments (GD) and health authorities (HA) have no check digits.
fn gb_check(body: &str) -> bool {
    if body.starts_with("GD") || body.starts_with("HA") {
        return true;
    }
    let d = digits(body);
    if d.len() < 9 {
        return false;
    }
    let weighted: u32 = d[..7].iter().zip([8, 7, 6, 5, 4, 3, 2]).map(|(d, w)| d * w).sum();
    let total = weighted + d[7] * 10 + d[8];
    total.is_multiple_of(97) || (total + 55).is_multiple_of(97)
}

/// Two-digit prefixes the IRS does not assign to EINs.
const EIN_UNASSIGNED: [&str; 17] = [
    "00", "07", "08", "09", "17", "18", "19", "28", "29", "49", "69", "70", "78", "79", "89", "96", "97",
];

/// US employer identification number: 9 digits (written 12-3456789), a prefix the IRS assigns.
fn ein(n: &str) -> Result<String, TaxIdError> {
    let body = n.strip_prefix("US").unwrap_or(n);
    if body.len() != 9 || !body.chars().all(|c| c.is_ascii_digit()) {
        return Err(TaxIdError::Format {
            number: n.to_string(),
            country: "US".into(),
            expected: "9 digits (EIN, 12-3456789)",
        });
    }
    let prefix = &body[..2];
    if EIN_UNASSIGNED.contains(&prefix) {
        return Err(TaxIdError::EinPrefix {
            number: n.to_string(),
            prefix: prefix.to_string(),
        });
    }
    Ok(format!("{}-{}", &body[..2], &body[2..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn german_numbers_pass_or_fail_their_check_digit() {
        assert_eq!(check("DE 136,695 976", None).unwrap().as_deref(), Some("DE136695976"));
        assert!(matches!(
            check("136695978", Some("DE")),
            Err(TaxIdError::CheckDigit { .. })
        ));
        assert!(matches!(check("DE12345", Some("DE")), Err(TaxIdError::Format { .. })));
    }

    #[test]
    fn french_numbers_check_the_key_against_the_siren() {
        assert_eq!(
            check("Fr 40 303 265 045", None).unwrap().as_deref(),
            Some("FR40303265045")
        );
        assert!(check("23334175221", Some("FR")).is_ok());
        assert!(matches!(
            check("84 323 140 391", Some("FR")),
            Err(TaxIdError::CheckDigit { .. })
        ));
    }

    #[test]
    fn british_numbers_check_both_modulus_rules() {
        assert!(check("GB 980 7806 84", None).is_ok());
        assert!(matches!(
            check("802311781", Some("GB")),
            Err(TaxIdError::CheckDigit { .. })
        ));
        assert!(check("GBGD001", None).is_ok());
    }

    #[test]
    fn an_ein_is_nine_digits_with_an_assigned_prefix() {
        assert_eq!(check("12-3456789", Some("US")).unwrap().as_deref(), Some("12-3456789"));
        assert!(matches!(
            check("07-3456789", Some("US")),
            Err(TaxIdError::EinPrefix { .. })
        ));
        assert!(matches!(check("12-345678", Some("US")), Err(TaxIdError::Format { .. })));
    }

    #[test]
    fn other_eu_states_are_checked_by_format_and_unknown_countries_not_at_all() {
        assert!(check("NL123456789B01", None).is_ok());
        assert!(matches!(check("123456789", Some("NL")), Err(TaxIdError::Format { .. })));
        assert!(check("094259216", Some("GR")).is_ok(), "Greece's prefix is EL");
        assert_eq!(check("ABC", Some("JP")).unwrap(), None);
    }
}
