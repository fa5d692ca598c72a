//! Exact decimals for money and quantities, as Avro `decimal` (bytes, precision 18).
//!
//! Owns: the rule for values with more fractional digits than a field's scale, and the Avro byte
//! form. Must not: round. The documented rule is: trailing zeros are dropped, and a value that
//! still has more fractional digits than the scale (e.g. 0.005 at scale 2) is rejected with
//! [`DecimalError::TooPrecise`], never rounded or truncated. Money errors are business errors,
//! not formatting choices.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Precision of every canonical decimal field (the `.avsc` files say the same).
pub const PRECISION: u32 = 18;

/// apache-avro 0.22 refuses decimal bytes shorter than the precision needs (8 bytes hold 18
/// digits), so values are sign-extended to at least this length.
const MIN_BYTES: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    #[error("`{value}` has more than {scale} decimal places; syncline never rounds amounts")]
    TooPrecise { value: String, scale: u32 },
    #[error("`{value}` has more than {PRECISION} significant digits")]
    TooLarge { value: String },
    #[error("`{0}` is not a decimal number")]
    NotANumber(String),
}

/// A decimal with a fixed scale: `Dec<2>` for money, `Dec<3>` quantities, `Dec<4>` unit prices.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Dec<const SCALE: u32>(Decimal);

pub type Money = Dec<2>;
pub type Quantity = Dec<3>;
pub type UnitPrice = Dec<4>;

impl<const SCALE: u32> Dec<SCALE> {
    pub const ZERO: Self = Dec(Decimal::ZERO);

    pub fn new(value: Decimal) -> Result<Self, DecimalError> {
        let normalized = value.normalize();
        if normalized.scale() > SCALE {
            return Err(DecimalError::TooPrecise {
                value: value.to_string(),
                scale: SCALE,
            });
        }
        let mut v = normalized;
        v.rescale(SCALE);
        if v.mantissa().unsigned_abs() >= 10u128.pow(PRECISION) {
            return Err(DecimalError::TooLarge {
                value: value.to_string(),
            });
        }
        Ok(Dec(v))
    }

    pub fn value(&self) -> Decimal {
        self.0
    }

    pub fn is_positive(&self) -> bool {
        self.0 > Decimal::ZERO
    }

    /// Product, re-checked against this type's scale (e.g. quantity x price into money).
    pub fn checked_mul<const A: u32, const B: u32>(a: Dec<A>, b: Dec<B>) -> Result<Self, DecimalError> {
        let product = a.0.checked_mul(b.0).ok_or_else(|| DecimalError::TooLarge {
            value: format!("{} x {}", a.0, b.0),
        })?;
        Self::new(product)
    }

    /// `n` times this value (a monthly amount over a period's months).
    pub fn times(self, n: u32) -> Result<Self, DecimalError> {
        let product = self
            .0
            .checked_mul(Decimal::from(n))
            .ok_or_else(|| DecimalError::TooLarge {
                value: format!("{} x {n}", self.0),
            })?;
        Self::new(product)
    }

    pub fn checked_add(self, other: Self) -> Result<Self, DecimalError> {
        let sum = self.0.checked_add(other.0).ok_or_else(|| DecimalError::TooLarge {
            value: format!("{} + {}", self.0, other.0),
        })?;
        Self::new(sum)
    }

    pub fn checked_sub(self, other: Self) -> Result<Self, DecimalError> {
        let difference = self.0.checked_sub(other.0).ok_or_else(|| DecimalError::TooLarge {
            value: format!("{} - {}", self.0, other.0),
        })?;
        Self::new(difference)
    }

    /// Big-endian two's complement of the unscaled value, as Avro stores decimals.
    pub fn to_avro_bytes(&self) -> Vec<u8> {
        let unscaled = self.0.mantissa();
        let full = unscaled.to_be_bytes();
        // Drop redundant sign bytes, keeping at least MIN_BYTES.
        let mut start = 0;
        while start < full.len() - MIN_BYTES {
            let (b, next) = (full[start], full[start + 1]);
            let redundant = (b == 0x00 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0);
            if !redundant {
                break;
            }
            start += 1;
        }
        full[start..].to_vec()
    }

    pub fn from_avro_bytes(bytes: &[u8]) -> Result<Self, DecimalError> {
        if bytes.len() > 16 {
            return Err(DecimalError::TooLarge {
                value: format!("{}-byte decimal", bytes.len()),
            });
        }
        let fill = if bytes.first().is_some_and(|b| b & 0x80 != 0) {
            0xff
        } else {
            0x00
        };
        let mut full = [fill; 16];
        full[16 - bytes.len()..].copy_from_slice(bytes);
        let unscaled = i128::from_be_bytes(full);
        let value = Decimal::try_from_i128_with_scale(unscaled, SCALE).map_err(|_| DecimalError::TooLarge {
            value: unscaled.to_string(),
        })?;
        Self::new(value)
    }
}

impl<const SCALE: u32> FromStr for Dec<SCALE> {
    type Err = DecimalError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim();
        let value = Decimal::from_str_exact(trimmed)
            .or_else(|_| Decimal::from_scientific(trimmed))
            .map_err(|_| DecimalError::NotANumber(s.to_string()))?;
        Self::new(value)
    }
}

impl<const SCALE: u32> fmt::Display for Dec<SCALE> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl<const SCALE: u32> fmt::Debug for Dec<SCALE> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl<const SCALE: u32> Serialize for Dec<SCALE> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.to_avro_bytes())
    }
}

impl<'de, const SCALE: u32> Deserialize<'de> for Dec<SCALE> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor<const S: u32>;
        impl<const S: u32> serde::de::Visitor<'_> for Visitor<S> {
            type Value = Dec<S>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "Avro decimal bytes with scale {S}")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
                Dec::from_avro_bytes(v).map_err(E::custom)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_bytes(Visitor::<SCALE>)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_values_survive_the_byte_form() {
        for text in [
            "12345678.90",
            "0.01",
            "-0.01",
            "0",
            "9999999999999999.99",
            "-9999999999999999.99",
        ] {
            let m: Money = text.parse().unwrap();
            let back = Money::from_avro_bytes(&m.to_avro_bytes()).unwrap();
            assert_eq!(back, m, "{text}");
            assert!(m.to_avro_bytes().len() >= MIN_BYTES);
        }
        let m: Money = "12345678.90".parse().unwrap();
        assert_eq!(m.to_string(), "12345678.90");
    }

    #[test]
    fn too_many_decimals_are_rejected_not_rounded() {
        assert_eq!(
            "0.005".parse::<Money>(),
            Err(DecimalError::TooPrecise {
                value: "0.005".into(),
                scale: 2
            })
        );
        // Trailing zeros are not extra precision.
        assert_eq!("1.500".parse::<Money>().unwrap().to_string(), "1.50");
        assert!("0.005".parse::<Quantity>().is_ok());
    }

    #[test]
    fn overflow_and_garbage_are_errors() {
        assert!(matches!(
            "10000000000000000.00".parse::<Money>(),
            Err(DecimalError::TooLarge { .. })
        ));
        assert!(matches!("12,5".parse::<Money>(), Err(DecimalError::NotANumber(_))));
        assert!(Money::from_avro_bytes(&[0u8; 17]).is_err());
    }

    #[test]
    fn products_keep_the_target_scale() {
        let q: Quantity = "3".parse().unwrap();
        let p: UnitPrice = "19.99".parse().unwrap();
        assert_eq!(Money::checked_mul(q, p).unwrap().to_string(), "59.97");
        let odd: UnitPrice = "0.3333".parse().unwrap();
        assert!(
            Money::checked_mul(q, odd).is_err(),
            "0.9999 does not fit money without rounding"
        );
    }
}
