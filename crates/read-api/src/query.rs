//! The `Query` root: every read of the API contract (`docs/api.md`), with
//! its role rule.
//!
//! | field | who |
//! | --- | --- |
//! | `searchFlights`, `searchItineraries`, `flight`, `projections` | anyone, also anonymous |
//! | `booking`, `invoice` | the booking's customer, agents, admins; anyone else gets `FORBIDDEN` (not null: unauthorised is an error, never a silent answer) |
//! | `myBookings`, `myWaitlist` | any signed-in user (their own) |
//! | `bookings` | agents, admins |
//! | `payments` | customers (their own), agents and admins (all) |
//! | `analytics` | analysts, admins |
//! | `sagas` | admins |
//! | `me` | any signed-in user (null when anonymous) |
//! | `users`, `user` | admins |

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, Object, Result, ID};
use chrono::{DateTime, Utc};
use domain::values::Role;
use rust_decimal::Decimal;
use sqlx::{Postgres, QueryBuilder};
use uuid::Uuid;

use crate::analytics::Analytics;
use crate::auth::{sees_everything, Viewer};
use crate::cursor::{self, page_cost, page_size};
use crate::error::{bad_request, OrInternal};
use projections::model::billing::{PaymentRow, PAYMENT_COLUMNS};
use projections::model::bookings::{booking_by, BookingRow, BOOKING_COLUMNS};
use projections::model::flights::{
    lapsed_in_cabin, FlightRow, FLIGHT_CABINS_LATERAL, FLIGHT_CABIN_ARRAYS, FLIGHT_COLUMNS,
};
use projections::model::users::{like_escape, UserRow, USER_COLUMNS};
use projections::model::waitlist::my_waitlist;

use crate::itineraries;
use crate::types::{
    parse_id, pool, Booking, BookingStatus, Cabin, Date, Flight, Invoice, InvoiceLine, Itinerary,
    ItineraryLegInput, ItinerarySort, Money, Payment, PaymentStatus, ProjectionStatus, Saga,
    SagaRow, SagaStatus, User, WaitlistEntry, SAGA_COLUMNS,
};

pub struct Query;

/// Cursor keys.
type FlightKey = (Decimal, DateTime<Utc>, Uuid);
type TimeKey = (DateTime<Utc>, Uuid);

/// Legs of a multi-city trip after the first, at most.
const MAX_FURTHER_LEGS: usize = 5;

pub(crate) fn iata(code: &str, what: &str) -> Result<String> {
    let code = code.trim().to_ascii_uppercase();
    if code.len() == 3 && code.bytes().all(|b| b.is_ascii_alphabetic()) {
        Ok(code)
    } else {
        Err(bad_request(format!(
            "{what} must be a 3-letter airport code"
        )))
    }
}

/// Makes a connection of `rows` fetched with `limit + 1`: the extra row
/// only says there is a next page.
fn connection<R, N>(
    mut rows: Vec<R>,
    limit: i64,
    cursor_of: impl Fn(&R) -> String,
    node: impl Fn(R) -> Result<N>,
    has_previous: bool,
) -> Result<Connection<String, N>>
where
    N: async_graphql::OutputType,
{
    let has_next = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let mut conn = Connection::new(has_previous, has_next);
    for row in rows {
        let c = cursor_of(&row);
        conn.edges.push(Edge::new(c, node(row)?));
    }
    Ok(conn)
}

#[Object]
impl Query {
    /// Non-cancelled flights on the route departing on `date` (UTC) with at
    /// least `passengers` seats available in `cabin` (any cabin when not
    /// given) at a fare up to `maxPrice`: cheapest first, then earliest.
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn search_flights(
        &self,
        ctx: &Context<'_>,
        origin: String,
        destination: String,
        date: Date,
        cabin: Option<Cabin>,
        #[graphql(default = 1)] passengers: Option<i32>,
        max_price: Option<Decimal>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, Flight>> {
        let origin = iata(&origin, "origin")?;
        let destination = iata(&destination, "destination")?;
        let passengers = passengers.unwrap_or(1);
        if !(1..=9).contains(&passengers) {
            return Err(bad_request("passengers must be between 1 and 9"));
        }
        let limit = page_size(first)?;
        let after: Option<FlightKey> = after.map(|a| cursor::decode("flights", &a)).transpose()?;
        let rows: Vec<FlightRow> = sqlx::query_as(&format!(
            "SELECT {FLIGHT_COLUMNS}, c.price, {FLIGHT_CABIN_ARRAYS} \
             FROM (SELECT fc.flight_id, min(fc.fare) AS price \
                   FROM rm_flights f JOIN rm_flight_cabins fc ON fc.flight_id = f.flight_id \
                   WHERE f.origin = $1 AND f.destination = $2 AND f.departure_date = $3 \
                     AND NOT f.cancelled \
                     AND ($4::text IS NULL OR fc.cabin = $4) \
                     AND ($6::numeric IS NULL OR fc.fare <= $6) \
                     AND (fc.available_seats >= $5 OR fc.available_seats + {lapsed} >= $5) \
                   GROUP BY fc.flight_id) c \
             JOIN rm_flights f ON f.flight_id = c.flight_id \
             {lateral} \
             WHERE $7::numeric IS NULL \
                OR (c.price, f.departs_at, f.flight_id) > ($7::numeric, $8::timestamptz, $9::uuid) \
             ORDER BY c.price, f.departs_at, f.flight_id \
             LIMIT $10",
            lapsed = lapsed_in_cabin("fc"),
            lateral = *FLIGHT_CABINS_LATERAL,
        ))
        .bind(&origin)
        .bind(&destination)
        .bind(date.0)
        .bind(cabin.map(|c| domain::values::Cabin::from(c).as_str()))
        .bind(passengers)
        .bind(max_price)
        .bind(after.map(|k| k.0))
        .bind(after.map(|k| k.1))
        .bind(after.map(|k| k.2))
        .bind(limit + 1)
        .fetch_all(pool(ctx))
        .await
        .or_internal()?;
        connection(
            rows,
            limit,
            |r| {
                cursor::encode(
                    "flights",
                    &(r.price.unwrap_or_default(), r.departs_at, r.flight_id),
                )
            },
            |r| Ok(Flight(r)),
            after.is_some(),
        )
    }

    /// Trips from `origin` to `destination` departing on `date` (UTC), of
    /// up to `maxStops` connections (0 to 2) per direction: one-way; a
    /// round trip with `returnDate` (then back from `destination` to
    /// `origin`, departing that day); or a multi-city trip with `legs`, the
    /// further legs after the first (not with `returnDate`; at most 5).
    /// Each flight is priced in `cabin`, or else its cheapest cabin with
    /// `passengers` seats; `maxPrice` caps `totalPrice`; `airline`, when
    /// given, flies every flight; `departAfter`/`departBefore` bound the
    /// first flight's departure. A connection is at the same airport, at
    /// least `minConnectionMinutes` and at most `maxLayoverMinutes` after
    /// the arrival, and no airport is visited twice in one direction.
    /// Cancelled and departed flights are never offered.
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn search_itineraries(
        &self,
        ctx: &Context<'_>,
        origin: String,
        destination: String,
        date: Date,
        return_date: Option<Date>,
        #[graphql(default = 1)] max_stops: Option<i32>,
        cabin: Option<Cabin>,
        #[graphql(default = 1)] passengers: Option<i32>,
        max_price: Option<Decimal>,
        #[graphql(default_with = "Some(ItinerarySort::Price)")] sort: Option<ItinerarySort>,
        first: Option<i32>,
        after: Option<String>,
        legs: Option<Vec<ItineraryLegInput>>,
        airline: Option<String>,
        depart_after: Option<DateTime<Utc>>,
        depart_before: Option<DateTime<Utc>>,
        #[graphql(default = 45)] min_connection_minutes: Option<i32>,
        #[graphql(default = 1440)] max_layover_minutes: Option<i32>,
    ) -> Result<Connection<String, Itinerary>> {
        let mut directions = vec![itineraries::Direction {
            origin: iata(&origin, "origin")?,
            destination: iata(&destination, "destination")?,
            date: date.0,
        }];
        match (return_date, legs) {
            (Some(_), Some(_)) => {
                return Err(bad_request("give `returnDate` or `legs`, not both"));
            }
            (Some(back), None) => {
                if back.0 < date.0 {
                    return Err(bad_request("returnDate must not be before date"));
                }
                let out = directions[0].clone();
                directions.push(itineraries::Direction {
                    origin: out.destination,
                    destination: out.origin,
                    date: back.0,
                });
            }
            (None, Some(legs)) => {
                if legs.len() > MAX_FURTHER_LEGS {
                    return Err(bad_request(format!(
                        "at most {MAX_FURTHER_LEGS} further legs"
                    )));
                }
                for (i, leg) in legs.into_iter().enumerate() {
                    let what = |field: &str| format!("legs[{i}].{field}");
                    let previous = directions.last().map(|d| d.date).unwrap_or(date.0);
                    if leg.date.0 < previous {
                        return Err(bad_request(format!(
                            "{} must not be before the previous leg's date",
                            what("date")
                        )));
                    }
                    directions.push(itineraries::Direction {
                        origin: iata(&leg.origin, &what("origin"))?,
                        destination: iata(&leg.destination, &what("destination"))?,
                        date: leg.date.0,
                    });
                }
            }
            (None, None) => {}
        }
        if directions.iter().any(|d| d.origin == d.destination) {
            return Err(bad_request("origin and destination must differ"));
        }
        let max_stops = max_stops.unwrap_or(1);
        if !(0..=2).contains(&max_stops) {
            return Err(bad_request("maxStops must be between 0 and 2"));
        }
        let passengers = passengers.unwrap_or(1);
        if !(1..=9).contains(&passengers) {
            return Err(bad_request("passengers must be between 1 and 9"));
        }
        if max_price.is_some_and(|p| p.is_sign_negative()) {
            return Err(bad_request("maxPrice must not be negative"));
        }
        let airline = airline.map(|a| a.trim().to_owned());
        if airline
            .as_deref()
            .is_some_and(|a| a.is_empty() || a.len() > 100 || !domain::values::text::is_plain(a))
        {
            return Err(bad_request(
                "airline must be 1 to 100 characters without control characters",
            ));
        }
        if let (Some(a), Some(b)) = (depart_after, depart_before) {
            if a > b {
                return Err(bad_request("departAfter must not be after departBefore"));
            }
        }
        let min_connection = min_connection_minutes.unwrap_or(45);
        if !(0..=1440).contains(&min_connection) {
            return Err(bad_request(
                "minConnectionMinutes must be between 0 and 1440",
            ));
        }
        let max_layover = max_layover_minutes.unwrap_or(1440);
        if !(min_connection..=2880).contains(&max_layover) {
            return Err(bad_request(
                "maxLayoverMinutes must be between minConnectionMinutes and 2880",
            ));
        }
        let search = itineraries::Search {
            directions,
            max_stops: max_stops as usize,
            cabin: cabin.map(Into::into),
            passengers,
            max_price,
            airline,
            depart_after,
            depart_before,
            min_connection: chrono::Duration::minutes(min_connection.into()),
            max_layover: chrono::Duration::minutes(max_layover.into()),
            sort: sort.unwrap_or(ItinerarySort::Price).into(),
        };
        let limit = page_size(first)?;
        // A cursor belongs to one ranking: a PRICE cursor means nothing in
        // a DURATION list.
        let tag = match search.sort {
            itineraries::ItinerarySort::Price => "itineraries-price",
            itineraries::ItinerarySort::Duration => "itineraries-duration",
            itineraries::ItinerarySort::Departure => "itineraries-departure",
        };
        let after: Option<itineraries::ItineraryKey> =
            after.map(|a| cursor::decode(tag, &a)).transpose()?;
        let trips = itineraries::search(pool(ctx), &search, after.as_ref(), limit as usize + 1)
            .await
            .or_internal()?;
        connection(
            trips,
            limit,
            |t| cursor::encode(tag, &t.key()),
            |t| Ok(Itinerary(t)),
            after.is_some(),
        )
    }

    /// One flight, cancelled or not; null when there is none.
    async fn flight(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Flight>> {
        let id = parse_id(&id, "id")?;
        let row: Option<FlightRow> = sqlx::query_as(&format!(
            "SELECT {FLIGHT_COLUMNS}, {FLIGHT_CABIN_ARRAYS} FROM rm_flights f \
             {lateral} WHERE f.flight_id = $1",
            lateral = *FLIGHT_CABINS_LATERAL
        ))
        .bind(id)
        .fetch_optional(pool(ctx))
        .await
        .or_internal()?;
        Ok(row.map(Flight))
    }

    /// A booking by `id` or by `pnr` (exactly one): its customer, agents and
    /// admins may read it, anyone else gets `FORBIDDEN`; null when there is
    /// none.
    async fn booking(
        &self,
        ctx: &Context<'_>,
        id: Option<ID>,
        pnr: Option<String>,
    ) -> Result<Option<Booking>> {
        let viewer = Viewer::of(ctx);
        viewer.user()?;
        let (id, pnr) = match (id, pnr) {
            (Some(id), None) => (Some(parse_id(&id, "id")?), None),
            (None, Some(pnr)) => (None, Some(pnr.trim().to_ascii_uppercase())),
            _ => return Err(bad_request("give exactly one of `id` and `pnr`")),
        };
        if pnr
            .as_deref()
            .is_some_and(|p| !domain::values::text::is_plain(p))
        {
            return Err(bad_request("pnr must not contain control characters"));
        }
        let by_pnr = pnr.is_some();
        let Some(row) = booking_by(pool(ctx), id, pnr.as_deref())
            .await
            .or_internal()?
        else {
            return Ok(None);
        };
        // A PNR is six characters anyone can guess at: someone else's
        // answers as a PNR that does not exist, so guessing tells nothing.
        // (An id is a UUID nobody guesses: someone else's is FORBIDDEN.)
        match viewer.owner_or_staff(row.customer_id) {
            Ok(_) => Ok(Some(Booking(row))),
            Err(_) if by_pnr => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The caller's own bookings (as the customer), newest first.
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn my_bookings(
        &self,
        ctx: &Context<'_>,
        status: Option<BookingStatus>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, Booking>> {
        let caller = Viewer::of(ctx).user()?;
        list_bookings(ctx, Some(caller.user_id), None, status, first, after).await
    }

    /// The caller's own waiting-list entries (as the customer), the latest
    /// joined first, whatever became of them.
    async fn my_waitlist(&self, ctx: &Context<'_>) -> Result<Vec<WaitlistEntry>> {
        let caller = Viewer::of(ctx).user()?;
        let rows = my_waitlist(pool(ctx), caller.user_id).await.or_internal()?;
        Ok(rows.into_iter().map(WaitlistEntry).collect())
    }

    /// Every booking, optionally of one flight and status, newest first
    /// (agents and admins).
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn bookings(
        &self,
        ctx: &Context<'_>,
        flight_id: Option<ID>,
        status: Option<BookingStatus>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, Booking>> {
        Viewer::of(ctx).with_role(&[Role::Agent, Role::Auditor, Role::Admin])?;
        let flight = flight_id.map(|f| parse_id(&f, "flightId")).transpose()?;
        list_bookings(ctx, None, flight, status, first, after).await
    }

    /// Payments requested in `[from, to)`, newest first: a customer sees
    /// those of their own bookings, agents and admins all.
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    #[allow(clippy::too_many_arguments)]
    async fn payments(
        &self,
        ctx: &Context<'_>,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        status: Option<PaymentStatus>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, Payment>> {
        let caller = Viewer::of(ctx).user()?;
        let only_customer = (!sees_everything(caller.role)).then_some(caller.user_id);
        let limit = page_size(first)?;
        let after: Option<TimeKey> = after.map(|a| cursor::decode("payments", &a)).transpose()?;
        let rows: Vec<PaymentRow> = sqlx::query_as(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM rm_payments p \
             WHERE ($1::uuid IS NULL OR p.booking_id IN \
                      (SELECT b.booking_id FROM rm_bookings b WHERE b.customer_id = $1)) \
               AND ($2::timestamptz IS NULL OR p.requested_at >= $2) \
               AND ($3::timestamptz IS NULL OR p.requested_at < $3) \
               AND ($4::text IS NULL OR p.status = $4) \
               AND ($5::timestamptz IS NULL OR (p.requested_at, p.payment_id) < ($5, $6::uuid)) \
             ORDER BY p.requested_at DESC, p.payment_id DESC LIMIT $7"
        ))
        .bind(only_customer)
        .bind(from)
        .bind(to)
        .bind(status.map(|s| domain::payment::PaymentStatus::from(s).as_str()))
        .bind(after.map(|k| k.0))
        .bind(after.map(|k| k.1))
        .bind(limit + 1)
        .fetch_all(pool(ctx))
        .await
        .or_internal()?;
        connection(
            rows,
            limit,
            |r| cursor::encode("payments", &(r.requested_at, r.payment_id)),
            |r| Ok(Payment::from(r)),
            after.is_some(),
        )
    }

    /// An invoice by number: same rule as its booking.
    async fn invoice(&self, ctx: &Context<'_>, number: String) -> Result<Option<Invoice>> {
        let viewer = Viewer::of(ctx);
        viewer.user()?;
        if !domain::values::text::is_plain(&number) {
            return Err(bad_request("number must not contain control characters"));
        }
        type Row = (
            String,
            Uuid,
            Uuid,
            String,
            serde_json::Value,
            Decimal,
            Decimal,
            Decimal,
            Decimal,
            DateTime<Utc>,
            Option<Uuid>,
        );
        let row: Option<Row> = sqlx::query_as(
            "SELECT i.invoice_number, i.payment_id, i.booking_id, i.currency, i.lines, i.subtotal, \
                    i.tax_rate, i.tax, i.total, i.issued_at, b.customer_id \
             FROM rm_invoices i LEFT JOIN rm_bookings b ON b.booking_id = i.booking_id \
             WHERE i.invoice_number = $1",
        )
        .bind(number.trim())
        .fetch_optional(pool(ctx))
        .await
        .or_internal()?;
        let Some((
            number,
            payment,
            booking,
            currency,
            lines,
            subtotal,
            rate,
            tax,
            total,
            at,
            owner,
        )) = row
        else {
            return Ok(None);
        };
        // Invoice numbers follow PNRs, which anyone can guess at: someone
        // else's answers as one that does not exist.
        let allowed = match owner {
            Some(owner) => viewer.owner_or_staff(owner).is_ok(),
            None => viewer
                .with_role(&[Role::Agent, Role::Auditor, Role::Admin])
                .is_ok(),
        };
        if !allowed {
            return Ok(None);
        }
        let lines: Vec<InvoiceLine> = serde_json::from_value(lines).or_internal()?;
        Ok(Some(Invoice {
            number,
            payment_id: crate::types::id(payment),
            booking_id: crate::types::id(booking),
            lines,
            subtotal: Money::new(subtotal, &currency),
            tax_rate: rate,
            tax: Money::new(tax, &currency),
            total: Money::new(total, &currency),
            issued_at: at,
        }))
    }

    /// Revenue, routes, airlines, load factor and the booking funnel
    /// (analysts and admins).
    async fn analytics(&self, ctx: &Context<'_>) -> Result<Analytics> {
        Viewer::of(ctx).with_role(&[Role::Analyst, Role::Auditor, Role::Admin])?;
        Ok(Analytics)
    }

    /// Sagas, optionally in one status, newest first (admins): the step
    /// each is at, its deadlines, retries and last error.
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn sagas(
        &self,
        ctx: &Context<'_>,
        status: Option<SagaStatus>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, Saga>> {
        Viewer::of(ctx).with_role(&[Role::Auditor, Role::Admin])?;
        let limit = page_size(first)?;
        let after: Option<TimeKey> = after.map(|a| cursor::decode("sagas", &a)).transpose()?;
        // Only the filters given are in the statement, so each form has a
        // plan on its index (0008_sagas_read.sql) rather than one generic
        // plan for every combination.
        let mut q =
            QueryBuilder::<Postgres>::new(format!("SELECT {SAGA_COLUMNS} FROM sagas s WHERE true"));
        if let Some(status) = status {
            q.push(" AND s.status = ")
                .push_bind(domain::fulfilment::SagaStatus::from(status).as_str());
        }
        if let Some((at, saga)) = after {
            q.push(" AND (s.created_at, s.saga_id) < (")
                .push_bind(at)
                .push(", ")
                .push_bind(saga)
                .push(")");
        }
        q.push(" ORDER BY s.created_at DESC, s.saga_id DESC LIMIT ")
            .push_bind(limit + 1);
        let rows: Vec<SagaRow> = q
            .build_query_as()
            .fetch_all(pool(ctx))
            .await
            .or_internal()?;
        connection(
            rows,
            limit,
            |r| cursor::encode("sagas", &(r.created_at, r.saga_id)),
            |r| Ok(Saga(r)),
            after.is_some(),
        )
    }

    /// The caller's own account, with their bookings; null when anonymous
    /// (or not yet in the read model: ask with `X-Read-After`).
    async fn me(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        let Some(caller) = Viewer::of(ctx).0 else {
            return Ok(None);
        };
        user_by_id(ctx, caller.user_id).await
    }

    /// Accounts, newest first (admins): `search` matches a part of the
    /// email or the name, whatever its case; `role` keeps one role. Erased
    /// users are listed without personal data (and no search finds them).
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        search: Option<String>,
        role: Option<crate::types::Role>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, User>> {
        Viewer::of(ctx).with_role(&[Role::Admin])?;
        let limit = page_size(first)?;
        let after: Option<TimeKey> = after.map(|a| cursor::decode("users", &a)).transpose()?;
        let pattern = search
            .map(|s| s.trim().to_lowercase())
            .filter(|s| !s.is_empty())
            .map(|s| {
                if s.chars().count() > 254 {
                    Err(bad_request("search must be at most 254 characters"))
                } else {
                    Ok(format!("%{}%", like_escape(&s)))
                }
            })
            .transpose()?;
        let rows: Vec<UserRow> = sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS} FROM rm_users u \
             WHERE ($1::text IS NULL OR lower(u.email) LIKE $1 OR lower(u.full_name) LIKE $1) \
               AND ($2::text IS NULL OR u.role = $2) \
               AND ($3::timestamptz IS NULL OR (u.registered_at, u.user_id) < ($3, $4::uuid)) \
             ORDER BY u.registered_at DESC, u.user_id DESC LIMIT $5"
        ))
        .bind(pattern)
        .bind(role.map(|r| domain::values::Role::from(r).as_str()))
        .bind(after.map(|k| k.0))
        .bind(after.map(|k| k.1))
        .bind(limit + 1)
        .fetch_all(pool(ctx))
        .await
        .or_internal()?;
        connection(
            rows,
            limit,
            |r| cursor::encode("users", &(r.registered_at, r.user_id)),
            |r| Ok(User(r)),
            after.is_some(),
        )
    }

    /// One account (admins); null when there is no such user.
    async fn user(&self, ctx: &Context<'_>, id: ID) -> Result<Option<User>> {
        Viewer::of(ctx).with_role(&[Role::Admin])?;
        user_by_id(ctx, parse_id(&id, "id")?).await
    }

    /// Every projector's position and lag.
    async fn projections(&self, ctx: &Context<'_>) -> Result<Vec<ProjectionStatus>> {
        let status = projections::status(pool(ctx)).await.or_internal()?;
        Ok(status
            .into_iter()
            .map(|s| ProjectionStatus {
                name: s.name,
                position: s.position.to_string(),
                lag: s.lag_events.min(i64::MAX as u64) as i64,
                lag_seconds: s.lag_seconds,
                events_seen: s.events_seen.min(i64::MAX as u64) as i64,
                last_recorded_at: s.last_recorded_at,
                updated_at: s.updated_at,
            })
            .collect())
    }
}

async fn user_by_id(ctx: &Context<'_>, id: Uuid) -> Result<Option<User>> {
    let row: Option<UserRow> = sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM rm_users u WHERE u.user_id = $1"
    ))
    .bind(id)
    .fetch_optional(pool(ctx))
    .await
    .or_internal()?;
    Ok(row.map(User))
}

pub(crate) async fn list_bookings(
    ctx: &Context<'_>,
    customer: Option<Uuid>,
    flight: Option<Uuid>,
    status: Option<BookingStatus>,
    first: Option<i32>,
    after: Option<String>,
) -> Result<Connection<String, Booking>> {
    let limit = page_size(first)?;
    let after: Option<TimeKey> = after.map(|a| cursor::decode("bookings", &a)).transpose()?;
    let rows: Vec<BookingRow> = sqlx::query_as(&format!(
        "SELECT {BOOKING_COLUMNS} FROM rm_bookings b \
         WHERE ($1::uuid IS NULL OR b.customer_id = $1) \
           AND ($2::uuid IS NULL OR b.flight_id = $2) \
           AND ($3::text IS NULL OR b.status = $3) \
           AND ($4::timestamptz IS NULL OR (b.created_at, b.booking_id) < ($4, $5::uuid)) \
         ORDER BY b.created_at DESC, b.booking_id DESC LIMIT $6"
    ))
    .bind(customer)
    .bind(flight)
    .bind(status.map(|s| domain::booking::BookingStatus::from(s).as_str()))
    .bind(after.map(|k| k.0))
    .bind(after.map(|k| k.1))
    .bind(limit + 1)
    .fetch_all(pool(ctx))
    .await
    .or_internal()?;
    connection(
        rows,
        limit,
        |r| cursor::encode("bookings", &(r.created_at, r.booking_id)),
        |r| Ok(Booking(r)),
        after.is_some(),
    )
}
