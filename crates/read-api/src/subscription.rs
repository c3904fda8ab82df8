//! Subscriptions, by polling the read models every
//! [`ReadSettings::poll_interval`](crate::ReadSettings): the projectors do
//! not notify yet. Each pushes the current state first, then every change.
//! A poll is one primary-key query, so an idle subscription is cheap.

use std::collections::HashMap;
use std::time::Duration;

use async_graphql::{Context, Result, Subscription, ID};
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt as _};
use sqlx::PgPool;
use uuid::Uuid;

use crate::auth::Viewer;
use crate::error::{error, internal, Code, OrInternal};
use projections::model::bookings::{booking_by, BookingRow};
use projections::model::flights::next_lapse;

use crate::types::{id, parse_id, pool, seat_map, Booking, SeatChange, SeatState, SeatStatus};
use crate::ReadSettings;

pub struct Subscription;

#[Subscription]
impl Subscription {
    /// The booking now, then each time it (or its payment) changes. Its
    /// customer, agents and admins only.
    async fn booking_updated(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> Result<impl Stream<Item = Result<Booking>>> {
        let booking = parse_id(&id, "id")?;
        let pool = pool(ctx).clone();
        let row = booking_by(&pool, Some(booking), None)
            .await
            .or_internal()?
            .ok_or_else(|| error(Code::NotFound, "no such booking"))?;
        Viewer::of(ctx).owner_or_staff(row.customer_id)?;
        let every = ctx.data_unchecked::<ReadSettings>().poll_interval;
        Ok(poll(every, move |last| {
            booking_step(pool.clone(), booking, last)
        }))
    }

    /// The flight's seat map now (every seat), then the seats whose status
    /// changed. Anyone may watch.
    async fn seat_map_changed(
        &self,
        ctx: &Context<'_>,
        flight_id: ID,
    ) -> Result<impl Stream<Item = Result<SeatChange>>> {
        let flight = parse_id(&flight_id, "flightId")?;
        let pool = pool(ctx).clone();
        flight_version(&pool, flight)
            .await
            .or_internal()?
            .ok_or_else(|| error(Code::NotFound, "no such flight"))?;
        let every = ctx.data_unchecked::<ReadSettings>().poll_interval;
        Ok(poll(every, move |last| {
            seats_step(pool.clone(), flight, last)
        }))
    }
}

/// What a booking looked like when last pushed.
type Fingerprint = (
    DateTime<Utc>,
    domain::booking::BookingStatus,
    Option<DateTime<Utc>>,
);

/// What a seat map looked like when last pushed.
struct SeatsSeen {
    updated_at: DateTime<Utc>,
    cancelled: bool,
    next_lapse: Option<DateTime<Utc>>,
    statuses: HashMap<String, SeatStatus>,
}

/// One poll: the new state and, when something changed, what to push. A
/// failed poll keeps the last state and pushes the error.
type Step<S, T> = (Option<S>, Option<Result<T>>);

/// Calls `step` at once and then every `every`, threading its state, and
/// yields what it pushes.
fn poll<S, T, F, Fut>(every: Duration, step: F) -> impl Stream<Item = Result<T>>
where
    S: Send + 'static,
    T: Send + 'static,
    F: Fn(Option<S>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Step<S, T>> + Send,
{
    futures::stream::unfold(
        (None::<S>, false, step),
        move |(mut state, mut started, step)| async move {
            loop {
                if started {
                    tokio::time::sleep(every).await;
                }
                started = true;
                let (next, item) = step(state).await;
                state = next;
                if let Some(item) = item {
                    return Some((item, (state, started, step)));
                }
            }
        },
    )
    .boxed()
}

async fn booking_step(
    pool: PgPool,
    booking: Uuid,
    last: Option<Fingerprint>,
) -> Step<Fingerprint, Booking> {
    let (row, payment_at) = match booking_and_payment(&pool, booking).await {
        Ok(Some(found)) => found,
        Ok(None) => {
            return (
                last,
                Some(Err(error(Code::NotFound, "the booking is gone"))),
            )
        }
        Err(e) => return (last, Some(Err(internal(e)))),
    };
    let now = (row.updated_at, row.status, payment_at);
    if last.as_ref() == Some(&now) {
        return (last, None);
    }
    (Some(now), Some(Ok(Booking(row))))
}

async fn seats_step(
    pool: PgPool,
    flight: Uuid,
    last: Option<SeatsSeen>,
) -> Step<SeatsSeen, SeatChange> {
    let (updated_at, cancelled) = match flight_version(&pool, flight).await {
        Ok(Some(v)) => v,
        Ok(None) => return (last, Some(Err(error(Code::NotFound, "the flight is gone")))),
        Err(e) => return (last, Some(Err(internal(e)))),
    };
    // Reload the seats only when the flight changed or a hold may have
    // lapsed since the last look.
    if let Some(seen) = &last {
        let lapse_due = seen.next_lapse.is_some_and(|t| t <= Utc::now());
        if seen.updated_at == updated_at && seen.cancelled == cancelled && !lapse_due {
            return (last, None);
        }
    }
    let loaded = async {
        Ok::<_, sqlx::Error>((
            seat_map(&pool, flight).await?,
            next_lapse(&pool, flight).await?,
        ))
    };
    let (seats, next_lapse) = match loaded.await {
        Ok(v) => v,
        Err(e) => return (last, Some(Err(internal(e)))),
    };
    let changed: Vec<SeatState> = match &last {
        None => seats.clone(),
        Some(seen) => seats
            .iter()
            .filter(|s| seen.statuses.get(&s.seat) != Some(&s.status))
            .cloned()
            .collect(),
    };
    let push = match &last {
        None => true,
        Some(seen) => !changed.is_empty() || seen.cancelled != cancelled,
    };
    let available = seats
        .iter()
        .filter(|s| s.status == SeatStatus::Available)
        .count() as i32;
    let now = SeatsSeen {
        updated_at,
        cancelled,
        next_lapse,
        statuses: seats.into_iter().map(|s| (s.seat, s.status)).collect(),
    };
    let change = push.then(|| {
        Ok(SeatChange {
            flight_id: id(flight),
            seats: changed,
            available_seats: available,
            cancelled,
        })
    });
    (Some(now), change)
}

async fn booking_and_payment(
    pool: &PgPool,
    booking: Uuid,
) -> Result<Option<(BookingRow, Option<DateTime<Utc>>)>, sqlx::Error> {
    let Some(row) = booking_by(pool, Some(booking), None).await? else {
        return Ok(None);
    };
    let payment_at: Option<DateTime<Utc>> = match row.payment_id {
        Some(p) => {
            sqlx::query_scalar("SELECT updated_at FROM rm_payments WHERE payment_id = $1")
                .bind(p)
                .fetch_optional(pool)
                .await?
        }
        None => None,
    };
    Ok(Some((row, payment_at)))
}

async fn flight_version(
    pool: &PgPool,
    flight: Uuid,
) -> Result<Option<(DateTime<Utc>, bool)>, sqlx::Error> {
    sqlx::query_as("SELECT updated_at, cancelled FROM rm_flights WHERE flight_id = $1")
        .bind(flight)
        .fetch_optional(pool)
        .await
}
