//! ISO 4217 currency codes in use: amounts in any other currency are refused.

const ACTIVE: &str = "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP \
BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ \
GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD \
MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR \
RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH \
UGX USD UYU UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG";

pub fn is_known(code: &str) -> bool {
    code.len() == 3 && ACTIVE.split_ascii_whitespace().any(|c| c == code)
}

/// `UNKNOWN_CURRENCY` unless `code` is an active ISO 4217 code.
pub fn check(code: &str) -> Result<(), crate::failure::Failure> {
    if is_known(code) {
        Ok(())
    } else {
        Err(crate::failure::Failure::business(
            "UNKNOWN_CURRENCY",
            format!("`{code}` is not an ISO 4217 currency code"),
        ))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_and_unknown_codes() {
        assert!(super::is_known("EUR") && super::is_known("USD") && super::is_known("JPY"));
        assert!(!super::is_known("usd") && !super::is_known("XYZ") && !super::is_known("EURO"));
    }
}
