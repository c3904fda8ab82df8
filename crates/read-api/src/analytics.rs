//! `analytics`: revenue (per day, month, route, airline), load factor per
//! flight and the booking funnel, over the tables of the `analytics`
//! projector (and `rm_flights` for load factor). Amounts are grouped by
//! currency too: money of different currencies is never added up.

use async_graphql::{Context, Object, Result, SimpleObject, ID};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::error::{bad_request, OrInternal};
use crate::types::{id, pool, Date, Money};

/// Reached only by analysts and admins (checked by `Query.analytics`).
pub struct Analytics;

#[derive(SimpleObject, Debug, Clone)]
pub struct Revenue {
    /// Captured payments, on their capture day.
    pub gross: Money,
    /// Refunds, on their refund day.
    pub refunds: Money,
    pub net: Money,
    pub captures: i64,
    pub refund_count: i64,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct DailyRevenue {
    pub day: Date,
    #[graphql(flatten)]
    pub revenue: Revenue,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct MonthlyRevenue {
    /// `YYYY-MM`.
    pub month: String,
    #[graphql(flatten)]
    pub revenue: Revenue,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct RouteRevenue {
    pub origin: String,
    pub destination: String,
    #[graphql(flatten)]
    pub revenue: Revenue,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct AirlineRevenue {
    pub airline: String,
    #[graphql(flatten)]
    pub revenue: Revenue,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct LoadFactor {
    pub flight_id: ID,
    pub flight_number: String,
    pub airline: String,
    pub origin: String,
    pub destination: String,
    pub departs_at: DateTime<Utc>,
    pub sold_seats: i32,
    pub total_seats: i32,
    /// sold / total, 0..1.
    pub load_factor: f64,
}

/// Bookings created in the period and how many reached each step.
#[derive(SimpleObject, Debug, Clone, Default)]
pub struct BookingFunnel {
    pub created: i64,
    pub payment_submitted: i64,
    pub paid: i64,
    pub ticketed: i64,
    pub expired: i64,
    pub cancelled: i64,
    pub payment_failed: i64,
    pub failed: i64,
    /// paid / created.
    pub paid_rate: f64,
    /// ticketed / created.
    pub ticketed_rate: f64,
    pub expiry_rate: f64,
    pub cancellation_rate: f64,
}

type RevenueRow = (String, Decimal, Decimal, Decimal, i64, i64);
/// A key, then the sums of [`SUMS`].
type KeyedRow<K> = (K, String, Decimal, Decimal, Decimal, i64, i64);
type RouteRow = (String, String, String, Decimal, Decimal, Decimal, i64, i64);

fn revenue((currency, gross, refunds, net, captures, refund_count): RevenueRow) -> Revenue {
    Revenue {
        gross: Money::new(gross, &currency),
        refunds: Money::new(refunds, &currency),
        net: Money::new(net, &currency),
        captures,
        refund_count,
    }
}

const SUMS: &str = "currency, sum(gross), sum(refunds), sum(net), sum(captures)::bigint, \
                    sum(refund_count)::bigint";

fn limit(n: i32, max: i32) -> Result<i64> {
    if n < 1 {
        return Err(bad_request("limit must be positive"));
    }
    Ok(n.min(max) as i64)
}

fn rate(part: i64, whole: i64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

#[Object]
impl Analytics {
    /// Revenue per UTC day in `[from, to]` (the last 366 days with revenue
    /// when not bounded), oldest first.
    async fn revenue_by_day(
        &self,
        ctx: &Context<'_>,
        from: Option<Date>,
        to: Option<Date>,
    ) -> Result<Vec<DailyRevenue>> {
        let rows: Vec<KeyedRow<NaiveDate>> = sqlx::query_as(&format!(
            "SELECT day, {SUMS} FROM rm_revenue_daily \
                 WHERE ($1::date IS NULL OR day >= $1) AND ($2::date IS NULL OR day <= $2) \
                 GROUP BY day, currency ORDER BY day DESC, currency LIMIT 366"
        ))
        .bind(from.map(|d| d.0))
        .bind(to.map(|d| d.0))
        .fetch_all(pool(ctx))
        .await
        .or_internal()?;
        let mut out: Vec<DailyRevenue> = rows
            .into_iter()
            .map(|(day, c, g, r, n, k, rc)| DailyRevenue {
                day: Date(day),
                revenue: revenue((c, g, r, n, k, rc)),
            })
            .collect();
        out.reverse();
        Ok(out)
    }

    /// Revenue per calendar month, oldest first (the last 120 months).
    async fn revenue_by_month(&self, ctx: &Context<'_>) -> Result<Vec<MonthlyRevenue>> {
        let rows: Vec<KeyedRow<String>> = sqlx::query_as(&format!(
            "SELECT to_char(date_trunc('month', day), 'YYYY-MM') AS month, {SUMS} \
                 FROM rm_revenue_daily GROUP BY month, currency \
                 ORDER BY month DESC, currency LIMIT 120"
        ))
        .fetch_all(pool(ctx))
        .await
        .or_internal()?;
        let mut out: Vec<MonthlyRevenue> = rows
            .into_iter()
            .map(|(month, c, g, r, n, k, rc)| MonthlyRevenue {
                month,
                revenue: revenue((c, g, r, n, k, rc)),
            })
            .collect();
        out.reverse();
        Ok(out)
    }

    /// Routes by net revenue, best first.
    async fn top_routes(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 10)] limit: i32,
    ) -> Result<Vec<RouteRevenue>> {
        let rows: Vec<RouteRow> = sqlx::query_as(&format!(
            "SELECT origin, destination, {SUMS} FROM rm_revenue_daily \
                 GROUP BY origin, destination, currency \
                 ORDER BY sum(net) DESC, origin, destination, currency LIMIT $1"
        ))
        .bind(self::limit(limit, 100)?)
        .fetch_all(pool(ctx))
        .await
        .or_internal()?;
        Ok(rows
            .into_iter()
            .map(|(origin, destination, c, g, r, n, k, rc)| RouteRevenue {
                origin,
                destination,
                revenue: revenue((c, g, r, n, k, rc)),
            })
            .collect())
    }

    /// Airlines by net revenue, best first.
    async fn airlines(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] limit: i32,
    ) -> Result<Vec<AirlineRevenue>> {
        let rows: Vec<KeyedRow<String>> = sqlx::query_as(&format!(
            "SELECT airline, {SUMS} FROM rm_revenue_daily GROUP BY airline, currency \
                 ORDER BY sum(net) DESC, airline, currency LIMIT $1"
        ))
        .bind(self::limit(limit, 100)?)
        .fetch_all(pool(ctx))
        .await
        .or_internal()?;
        Ok(rows
            .into_iter()
            .map(|(airline, c, g, r, n, k, rc)| AirlineRevenue {
                airline,
                revenue: revenue((c, g, r, n, k, rc)),
            })
            .collect())
    }

    /// Load factor of flights departing in `[from, to)`, or of one flight;
    /// latest departure first.
    async fn load_factor(
        &self,
        ctx: &Context<'_>,
        flight_id: Option<ID>,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        #[graphql(default = 50)] limit: i32,
    ) -> Result<Vec<LoadFactor>> {
        let flight = flight_id
            .map(|f| crate::types::parse_id(&f, "flightId"))
            .transpose()?;
        type Row = (
            Uuid,
            String,
            String,
            String,
            String,
            DateTime<Utc>,
            i32,
            i32,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT flight_id, flight_number, airline, origin, destination, departs_at, \
                    sold_seats, total_seats FROM rm_flights \
             WHERE ($1::uuid IS NULL OR flight_id = $1) \
               AND ($2::timestamptz IS NULL OR departs_at >= $2) \
               AND ($3::timestamptz IS NULL OR departs_at < $3) \
             ORDER BY departs_at DESC, flight_id LIMIT $4",
        )
        .bind(flight)
        .bind(from)
        .bind(to)
        .bind(self::limit(limit, 500)?)
        .fetch_all(pool(ctx))
        .await
        .or_internal()?;
        Ok(rows
            .into_iter()
            .map(
                |(f, number, airline, origin, destination, departs, sold, total)| LoadFactor {
                    flight_id: id(f),
                    flight_number: number,
                    airline,
                    origin,
                    destination,
                    departs_at: departs,
                    sold_seats: sold,
                    total_seats: total,
                    load_factor: rate(sold as i64, total as i64),
                },
            )
            .collect())
    }

    /// The funnel of bookings created in `[from, to]` (UTC days; all time
    /// when not bounded).
    async fn funnel(
        &self,
        ctx: &Context<'_>,
        from: Option<Date>,
        to: Option<Date>,
    ) -> Result<BookingFunnel> {
        let (created, submitted, paid, ticketed, expired, cancelled, payment_failed, failed): (
            i64,
            i64,
            i64,
            i64,
            i64,
            i64,
            i64,
            i64,
        ) = sqlx::query_as(
            "SELECT COALESCE(sum(created), 0)::bigint, COALESCE(sum(payment_submitted), 0)::bigint, \
                    COALESCE(sum(paid), 0)::bigint, COALESCE(sum(ticketed), 0)::bigint, \
                    COALESCE(sum(expired), 0)::bigint, COALESCE(sum(cancelled), 0)::bigint, \
                    COALESCE(sum(payment_failed), 0)::bigint, COALESCE(sum(failed), 0)::bigint \
             FROM rm_booking_funnel \
             WHERE ($1::date IS NULL OR day >= $1) AND ($2::date IS NULL OR day <= $2)",
        )
        .bind(from.map(|d| d.0))
        .bind(to.map(|d| d.0))
        .fetch_one(pool(ctx))
        .await
        .or_internal()?;
        Ok(BookingFunnel {
            created,
            payment_submitted: submitted,
            paid,
            ticketed,
            expired,
            cancelled,
            payment_failed,
            failed,
            paid_rate: rate(paid, created),
            ticketed_rate: rate(ticketed, created),
            expiry_rate: rate(expired, created),
            cancellation_rate: rate(cancelled, created),
        })
    }
}
