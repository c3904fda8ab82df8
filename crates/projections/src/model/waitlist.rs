//! `rm_waitlist_entries`: one row per waiting-list entry, whatever became
//! of it. Cabins are stored as `Cabin::as_str` spells them, statuses as
//! `WaitlistStatus::as_str`.
//!
//! The place in line is counted when read, not stored (an entry leaving
//! the line would move every entry behind it): 1 + the `WAITING` entries of
//! the same flight and cabin that joined before, for a `WAITING` entry; 0
//! for any other.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use domain::values::Cabin;
use domain::waitlist::WaitlistStatus;
use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgExecutor, Row};
use uuid::Uuid;

use super::UnknownValue;

/// A row as the projector keeps it (spellings, not types: it writes them
/// back unchanged).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct EntryRecord {
    pub entry_id: Uuid,
    pub flight_id: Uuid,
    pub cabin: String,
    pub customer_id: Uuid,
    /// Seats the party needs: its passengers but infants.
    pub seats: i32,
    pub passengers: i32,
    pub status: String,
    /// The `seq` of the `WaitlistJoined` event's position: the order in line.
    pub joined_position: i64,
    pub joined_at: DateTime<Utc>,
    pub offer_booking_id: Option<Uuid>,
    pub offer_expires_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// An entry as readers see it, with its place in line.
#[derive(Debug, Clone, PartialEq)]
pub struct WaitlistEntryRow {
    pub entry_id: Uuid,
    pub flight_id: Uuid,
    pub cabin: Cabin,
    pub customer_id: Uuid,
    pub seats: i32,
    pub passengers: i32,
    pub status: WaitlistStatus,
    pub joined_position: i64,
    pub joined_at: DateTime<Utc>,
    /// The `HELD` booking of the offer (still set once accepted or lapsed).
    pub offer_booking_id: Option<Uuid>,
    pub offer_expires_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// 1: next in line; 0 when the entry no longer waits.
    pub place: i32,
}

/// Every status, to read one back from its spelling (the domain's enum has
/// no `FromStr`).
const STATUSES: [WaitlistStatus; 5] = [
    WaitlistStatus::Waiting,
    WaitlistStatus::Offered,
    WaitlistStatus::Accepted,
    WaitlistStatus::Lapsed,
    WaitlistStatus::Withdrawn,
];

/// The status spelled `s` in `rm_waitlist_entries.status`.
pub fn parse_status(s: &str) -> Result<WaitlistStatus, UnknownValue> {
    STATUSES
        .into_iter()
        .find(|status| status.as_str() == s)
        .ok_or_else(|| UnknownValue {
            kind: "waiting-list status",
            value: s.to_owned(),
        })
}

impl<'r> FromRow<'r, PgRow> for WaitlistEntryRow {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        let status: String = row.try_get("status")?;
        let cabin: String = row.try_get("cabin")?;
        Ok(Self {
            entry_id: row.try_get("entry_id")?,
            flight_id: row.try_get("flight_id")?,
            cabin: super::parse("cabin", &cabin)?,
            customer_id: row.try_get("customer_id")?,
            seats: row.try_get("seats")?,
            passengers: row.try_get("passengers")?,
            status: parse_status(&status).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
            joined_position: row.try_get("joined_position")?,
            joined_at: row.try_get("joined_at")?,
            offer_booking_id: row.try_get("offer_booking_id")?,
            offer_expires_at: row.try_get("offer_expires_at")?,
            updated_at: row.try_get("updated_at")?,
            place: row.try_get("place")?,
        })
    }
}

/// The columns of [`WaitlistEntryRow`] from `rm_waitlist_entries w`, its
/// place counted (over `rm_waitlist_entries_line`).
pub static ENTRY_COLUMNS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "w.entry_id, w.flight_id, w.cabin, w.customer_id, w.seats, w.passengers, w.status, \
         w.joined_position, w.joined_at, w.offer_booking_id, w.offer_expires_at, w.updated_at, \
         CASE WHEN w.status = '{waiting}' THEN 1 + ( \
             SELECT count(*)::int FROM rm_waitlist_entries a \
             WHERE a.flight_id = w.flight_id AND a.cabin = w.cabin \
               AND a.status = '{waiting}' AND a.joined_position < w.joined_position) \
         ELSE 0 END AS place",
        waiting = WaitlistStatus::Waiting.as_str()
    )
});

/// A customer's entries, the latest joined first.
pub async fn my_waitlist<'e>(
    db: impl PgExecutor<'e>,
    customer_id: Uuid,
) -> Result<Vec<WaitlistEntryRow>, sqlx::Error> {
    static QUERY: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {} FROM rm_waitlist_entries w WHERE w.customer_id = $1 \
             ORDER BY w.joined_position DESC",
            *ENTRY_COLUMNS
        )
    });
    sqlx::query_as(&QUERY).bind(customer_id).fetch_all(db).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_reads_back_from_its_spelling() {
        for status in STATUSES {
            assert_eq!(parse_status(status.as_str()), Ok(status));
        }
        assert!(parse_status("waiting").is_err());
    }
}
