use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use super::Currency;

/// Decimal places every amount is kept to.
const SCALE: u32 = 2;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("currency mismatch: {left} and {right}")]
    CurrencyMismatch { left: Currency, right: Currency },
    #[error("amount must not be negative")]
    Negative,
    #[error("amount has more than 2 decimal places")]
    TooPrecise,
    #[error("amount is out of range")]
    Overflow,
    #[error("{0:?} is not a decimal amount")]
    InvalidAmount(String),
    #[error(transparent)]
    InvalidCurrency(#[from] super::CodeError),
}

/// A non-negative amount of one currency, always exactly 2 decimal places.
///
/// Wire form: `{"amount": "420.00", "currency": "USD"}`; the amount is a
/// decimal string so no client ever parses money through a float.
/// Negative amounts are refused: a refund or a discount is its own event,
/// not a negative price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "MoneyRepr", into = "MoneyRepr")]
pub struct Money {
    amount: Decimal,
    currency: Currency,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MoneyRepr {
    amount: String,
    currency: Currency,
}

impl TryFrom<MoneyRepr> for Money {
    type Error = MoneyError;
    fn try_from(repr: MoneyRepr) -> Result<Self, Self::Error> {
        Money::parse(&repr.amount, repr.currency)
    }
}

impl From<Money> for MoneyRepr {
    fn from(m: Money) -> Self {
        MoneyRepr {
            amount: m.amount.to_string(),
            currency: m.currency,
        }
    }
}

impl Money {
    /// Refuses negative amounts and amounts with more than 2 significant
    /// decimal places (`420.5` becomes `420.50`; `420.555` is an error: a
    /// price is never silently rounded).
    pub fn new(amount: Decimal, currency: Currency) -> Result<Self, MoneyError> {
        if amount.is_sign_negative() && !amount.is_zero() {
            return Err(MoneyError::Negative);
        }
        let normalized = amount.normalize();
        if normalized.scale() > SCALE {
            return Err(MoneyError::TooPrecise);
        }
        let mut amount = normalized;
        amount.rescale(SCALE);
        // -0.00 would print with a sign.
        amount.set_sign_positive(true);
        Ok(Money { amount, currency })
    }

    /// Parses a decimal string such as `"420.00"` (no exponent, no float).
    pub fn parse(amount: &str, currency: Currency) -> Result<Self, MoneyError> {
        let trimmed = amount.trim();
        let decimal = Decimal::from_str_exact(trimmed)
            .map_err(|_| MoneyError::InvalidAmount(amount.to_owned()))?;
        Money::new(decimal, currency)
    }

    pub fn zero(currency: Currency) -> Self {
        Money {
            amount: Decimal::new(0, SCALE),
            currency,
        }
    }

    pub fn amount(&self) -> Decimal {
        self.amount
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    pub fn is_zero(&self) -> bool {
        self.amount.is_zero()
    }

    pub fn is_positive(&self) -> bool {
        !self.amount.is_zero()
    }

    fn same_currency(&self, other: &Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            })
        }
    }

    pub fn checked_add(&self, other: &Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let sum = self
            .amount
            .checked_add(other.amount)
            .ok_or(MoneyError::Overflow)?;
        Money::new(sum, self.currency)
    }

    /// Errs with [`MoneyError::Negative`] if `other` is larger.
    pub fn checked_sub(&self, other: &Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let difference = self
            .amount
            .checked_sub(other.amount)
            .ok_or(MoneyError::Overflow)?;
        Money::new(difference, self.currency)
    }

    /// `self - other`, or zero when `other` is larger.
    pub fn saturating_sub(&self, other: &Money) -> Result<Money, MoneyError> {
        match self.checked_sub(other) {
            Err(MoneyError::Negative) => Ok(Money::zero(self.currency)),
            result => result,
        }
    }

    pub fn checked_mul(&self, quantity: u32) -> Result<Money, MoneyError> {
        let product = self
            .amount
            .checked_mul(Decimal::from(quantity))
            .ok_or(MoneyError::Overflow)?;
        Money::new(product, self.currency)
    }

    /// Compares amounts; only meaningful within one currency.
    pub fn compare(&self, other: &Money) -> Result<Ordering, MoneyError> {
        self.same_currency(other)?;
        Ok(self.amount.cmp(&other.amount))
    }

    /// `self × ratio`, rounded half away from zero to 2 places (the usual
    /// commercial rounding: 0.005 becomes 0.01). `ratio` must be ≥ 0.
    pub fn mul_ratio(&self, ratio: Decimal) -> Result<Money, MoneyError> {
        if ratio.is_sign_negative() && !ratio.is_zero() {
            return Err(MoneyError::Negative);
        }
        let product = self.amount.checked_mul(ratio).ok_or(MoneyError::Overflow)?;
        Money::new(
            product.round_dp_with_strategy(SCALE, RoundingStrategy::MidpointAwayFromZero),
            self.currency,
        )
    }

    /// `percent` % of this amount, e.g. `percent(dec!(50))` is half.
    pub fn percent(&self, percent: Decimal) -> Result<Money, MoneyError> {
        self.mul_ratio(percent / Decimal::ONE_HUNDRED)
    }

    /// Adds up `items`, all of which must be in `currency`.
    pub fn sum<'a>(
        currency: Currency,
        items: impl IntoIterator<Item = &'a Money>,
    ) -> Result<Money, MoneyError> {
        items
            .into_iter()
            .try_fold(Money::zero(currency), |total, item| total.checked_add(item))
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

impl FromStr for Money {
    type Err = MoneyError;
    /// `"420.00 USD"`, the [`Display`](fmt::Display) form.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (amount, currency) = s
            .trim()
            .split_once(' ')
            .ok_or_else(|| MoneyError::InvalidAmount(s.to_owned()))?;
        Money::parse(amount, Currency::parse(currency.trim())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn usd(s: &str) -> Money {
        Money::parse(s, Currency::USD).unwrap()
    }

    #[test]
    fn it_should_serialize_the_amount_as_a_two_place_decimal_string() {
        assert_eq!(
            serde_json::to_value(usd("420")).unwrap(),
            json!({"amount": "420.00", "currency": "USD"})
        );
        assert_eq!(serde_json::to_value(usd("0.5")).unwrap()["amount"], "0.50");
        let back: Money =
            serde_json::from_value(json!({"amount": "420.00", "currency": "USD"})).unwrap();
        assert_eq!(back, usd("420"));
    }

    #[test]
    fn it_should_refuse_malformed_money_on_the_wire() {
        for bad in [
            json!({"amount": 420.0, "currency": "USD"}),
            json!({"amount": "-1.00", "currency": "USD"}),
            json!({"amount": "1.001", "currency": "USD"}),
            json!({"amount": "1e3", "currency": "USD"}),
            json!({"amount": "abc", "currency": "USD"}),
            json!({"amount": "1.00", "currency": "usd"}),
            json!({"amount": "1.00"}),
        ] {
            assert!(
                serde_json::from_value::<Money>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn it_should_accept_trailing_zeros_beyond_two_places() {
        assert_eq!(usd("1.2300"), usd("1.23"));
    }

    #[test]
    fn it_should_refuse_to_mix_currencies() {
        let eur = Money::parse("1", Currency::EUR).unwrap();
        assert!(matches!(
            usd("1").checked_add(&eur),
            Err(MoneyError::CurrencyMismatch { .. })
        ));
        assert_eq!(usd("1").checked_sub(&usd("2")), Err(MoneyError::Negative));
        assert_eq!(usd("2").saturating_sub(&usd("3")).unwrap(), usd("0"));
    }

    #[test]
    fn it_should_round_percentages_half_away_from_zero() {
        assert_eq!(usd("0.05").percent(Decimal::from(50)).unwrap(), usd("0.03"));
        assert_eq!(
            usd("420.00").percent(Decimal::from(50)).unwrap(),
            usd("210.00")
        );
        assert_eq!(
            usd("10.01").mul_ratio(Decimal::new(5, 1)).unwrap(),
            usd("5.01")
        );
    }

    #[test]
    fn it_should_sum_and_multiply() {
        assert_eq!(
            Money::sum(Currency::USD, &[usd("1.10"), usd("2.20")]).unwrap(),
            usd("3.30")
        );
        assert_eq!(usd("420").checked_mul(3).unwrap(), usd("1260"));
        assert_eq!("420.00 USD".parse::<Money>().unwrap(), usd("420"));
    }
}
