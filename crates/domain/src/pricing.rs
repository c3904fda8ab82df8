//! Prices: what each passenger pays, and what a cancellation gives back.
//!
//! Fares are per seat and tax-inclusive; the fare a passenger pays is the
//! flight's current fare for the cabin of the seat they got, fixed into the
//! booking when it is created (a later fare change never reprices it).

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;

use crate::booking::PassengerType;
use crate::flight::Flight;
use crate::values::{Cabin, Currency, Money, MoneyError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    #[error("flight is not scheduled")]
    NotScheduled,
    #[error("flight has no {0} cabin")]
    NoFare(Cabin),
    #[error(transparent)]
    Money(#[from] MoneyError),
}

/// The fare of each passenger (in order) and their total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    pub fares: Vec<Money>,
    pub total: Money,
}

pub fn fare_for(flight: &Flight, cabin: Cabin) -> Result<Money, PricingError> {
    if !flight.is_scheduled() {
        return Err(PricingError::NotScheduled);
    }
    flight.fare(cabin).ok_or(PricingError::NoFare(cabin))
}

/// What a passenger of `kind` pays in `cabin`: the adult fare, or the
/// cabin's share of it for a child or an infant (rounded half away from
/// zero to the cent).
pub fn fare_of(flight: &Flight, cabin: Cabin, kind: PassengerType) -> Result<Money, PricingError> {
    let adult = fare_for(flight, cabin)?;
    let spec = flight.cabin(cabin).ok_or(PricingError::NoFare(cabin))?;
    match spec.percent_for(kind) {
        100 => Ok(adult),
        share => Ok(adult.percent(Decimal::from(share))?),
    }
}

/// Prices one passenger per entry of `passengers` (their cabin and type).
pub fn quote(
    flight: &Flight,
    passengers: &[(Cabin, PassengerType)],
) -> Result<Quote, PricingError> {
    let currency: Currency = flight.currency().ok_or(PricingError::NotScheduled)?;
    let fares = passengers
        .iter()
        .map(|(cabin, kind)| fare_of(flight, *cabin, *kind))
        .collect::<Result<Vec<_>, _>>()?;
    let total = Money::sum(currency, &fares)?;
    Ok(Quote { fares, total })
}

/// How long before departure a cancellation still gets everything back.
pub const FULL_REFUND_NOTICE_HOURS: i64 = 24;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefundError {
    #[error("flight has departed; it can no longer be cancelled")]
    AfterDeparture,
    #[error(transparent)]
    Money(#[from] MoneyError),
}

/// The contract's cancellation policy: everything back more than 24 h
/// before departure, half after that (rounded half away from zero), and no
/// cancellation at or after departure (the API answers 409).
pub fn refund_policy(
    amount_paid: Money,
    departs_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Money, RefundError> {
    if now >= departs_at {
        return Err(RefundError::AfterDeparture);
    }
    if departs_at - now > Duration::hours(FULL_REFUND_NOTICE_HOURS) {
        Ok(amount_paid)
    } else {
        Ok(amount_paid.percent(Decimal::from(50))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn usd(s: &str) -> Money {
        Money::parse(s, Currency::USD).unwrap()
    }

    #[test]
    fn it_should_refund_everything_more_than_a_day_ahead() {
        let departs = Utc.with_ymd_and_hms(2030, 1, 2, 12, 0, 0).unwrap();
        let now = departs - Duration::hours(24) - Duration::seconds(1);
        assert_eq!(
            refund_policy(usd("420.00"), departs, now).unwrap(),
            usd("420.00")
        );
    }

    #[test]
    fn it_should_refund_half_within_a_day_of_departure() {
        let departs = Utc.with_ymd_and_hms(2030, 1, 2, 12, 0, 0).unwrap();
        assert_eq!(
            refund_policy(usd("420.01"), departs, departs - Duration::hours(24)).unwrap(),
            usd("210.01")
        );
        assert_eq!(
            refund_policy(usd("420.00"), departs, departs - Duration::seconds(1)).unwrap(),
            usd("210.00")
        );
    }

    #[test]
    fn it_should_refuse_to_refund_after_departure() {
        let departs = Utc.with_ymd_and_hms(2030, 1, 2, 12, 0, 0).unwrap();
        assert_eq!(
            refund_policy(usd("1"), departs, departs),
            Err(RefundError::AfterDeparture)
        );
    }
}
