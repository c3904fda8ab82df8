//! Small helpers shared by the projectors.

use chrono::{DateTime, NaiveDate, Utc};
use domain::values::Money;
use rust_decimal::Decimal;

/// A money value as its two columns.
pub fn money(m: &Money) -> (Decimal, String) {
    (m.amount(), m.currency().as_str().to_owned())
}

/// The UTC calendar day of an instant.
pub fn day(t: DateTime<Utc>) -> NaiveDate {
    t.date_naive()
}
