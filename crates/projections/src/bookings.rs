//! Projector `bookings`: bookings (`rm_bookings`) with their passengers,
//! seats and tickets (`rm_booking_passengers`), and an itinerary's further
//! flights (`rm_booking_connections`).
//!
//! Passenger names come from the sealed personal data; when the customer is
//! erased (`UserErased`, or a shredded key at replay) they are `NULL`.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::booking::{BookingEvent, BookingStatus};
use domain::user::UserEvent;
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::event::{Decoded, Event};
use crate::projector::Projector;
use crate::Result;

pub struct BookingsProjector;

#[async_trait]
impl Projector for BookingsProjector {
    fn name(&self) -> &'static str {
        "bookings"
    }
    fn categories(&self) -> &'static [&'static str] {
        &["booking", "user"]
    }
    fn tables(&self) -> &'static [&'static str] {
        &[
            "rm_bookings",
            "rm_booking_passengers",
            "rm_booking_connections",
        ]
    }
    fn needs_personal(&self) -> bool {
        true
    }
    async fn apply(&self, conn: &mut PgConnection, events: &[Decoded]) -> Result<()> {
        let mut state = State::load(conn, events).await?;
        for d in events {
            state.apply(d);
        }
        state.write(conn).await
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct BookingRow {
    booking_id: Uuid,
    pnr: String,
    flight_id: Uuid,
    customer_id: Uuid,
    created_by: Uuid,
    status: String,
    total: Decimal,
    currency: String,
    discount: Decimal,
    discount_code: Option<String>,
    refund: Option<Decimal>,
    hold_expires_at: DateTime<Utc>,
    payment_id: Option<Uuid>,
    reason: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct PassengerRow {
    booking_id: Uuid,
    passenger_id: Uuid,
    ordinal: i16,
    /// `None` for an infant.
    seat: Option<String>,
    passenger_type: String,
    travels_with: Option<Uuid>,
    cabin: String,
    fare: Decimal,
    first_name: Option<String>,
    last_name: Option<String>,
    ticket_number: Option<String>,
}

#[derive(Default)]
struct State {
    bookings: HashMap<Uuid, BookingRow>,
    passengers: HashMap<(Uuid, Uuid), PassengerRow>,
    dirty_bookings: HashSet<Uuid>,
    dirty_passengers: HashSet<(Uuid, Uuid)>,
    /// Passengers taken off their booking: their rows go.
    gone_passengers: Vec<(Uuid, Uuid)>,
    erased_customers: Vec<Uuid>,
    /// Changes to an itinerary's further flights, in log order.
    connections: Vec<ConnectionOp>,
}

/// A change to `rm_booking_connections`: few bookings are itineraries, so
/// each is its own statement, in the order the events came.
enum ConnectionOp {
    Booked {
        booking_id: Uuid,
        flight_id: Uuid,
        ordinal: i16,
        passenger_id: Uuid,
        seat: Option<String>,
        cabin: String,
        fare: Decimal,
    },
    /// A passenger's seat or ticket on one flight.
    Set {
        column: ConnectionColumn,
        booking_id: Uuid,
        flight_id: Uuid,
        passenger_id: Uuid,
        value: String,
    },
    Gone {
        booking_id: Uuid,
        passenger_id: Uuid,
    },
}

#[derive(Clone, Copy)]
enum ConnectionColumn {
    Seat,
    Ticket,
}

impl ConnectionOp {
    async fn write(&self, conn: &mut PgConnection) -> Result<()> {
        let query = match self {
            ConnectionOp::Booked {
                booking_id,
                flight_id,
                ordinal,
                passenger_id,
                seat,
                cabin,
                fare,
            } => sqlx::query(
                "INSERT INTO rm_booking_connections \
                     (booking_id, flight_id, ordinal, passenger_id, seat, cabin, fare) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (booking_id, flight_id, passenger_id) DO NOTHING",
            )
            .bind(booking_id)
            .bind(flight_id)
            .bind(ordinal)
            .bind(passenger_id)
            .bind(seat)
            .bind(cabin)
            .bind(fare),
            ConnectionOp::Set {
                column,
                booking_id,
                flight_id,
                passenger_id,
                value,
            } => sqlx::query(match column {
                ConnectionColumn::Seat => {
                    "UPDATE rm_booking_connections SET seat = $4 \
                     WHERE booking_id = $1 AND flight_id = $2 AND passenger_id = $3"
                }
                ConnectionColumn::Ticket => {
                    "UPDATE rm_booking_connections SET ticket_number = $4 \
                     WHERE booking_id = $1 AND flight_id = $2 AND passenger_id = $3"
                }
            })
            .bind(booking_id)
            .bind(flight_id)
            .bind(passenger_id)
            .bind(value),
            ConnectionOp::Gone {
                booking_id,
                passenger_id,
            } => sqlx::query(
                "DELETE FROM rm_booking_connections WHERE booking_id = $1 AND passenger_id = $2",
            )
            .bind(booking_id)
            .bind(passenger_id),
        };
        query.execute(&mut *conn).await?;
        Ok(())
    }
}

impl State {
    async fn load(conn: &mut PgConnection, events: &[Decoded]) -> Result<Self> {
        // A booking created in this batch has no rows yet: most batches
        // under load are mostly new bookings, and read nothing back.
        let created: HashSet<Uuid> = events
            .iter()
            .filter_map(|d| match &d.event {
                Event::Booking(BookingEvent::BookingCreated(c)) => Some(c.booking_id),
                _ => None,
            })
            .collect();
        let ids: Vec<Uuid> = events
            .iter()
            .filter_map(|d| match &d.event {
                Event::Booking(e) => Some(e.booking_id()),
                _ => None,
            })
            .filter(|id| !created.contains(id))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let mut state = State::default();
        if ids.is_empty() {
            return Ok(state);
        }
        let bookings: Vec<BookingRow> = sqlx::query_as(
            "SELECT booking_id, pnr, flight_id, customer_id, created_by, status, total, currency, \
                    discount, discount_code, \
                    refund, hold_expires_at, payment_id, reason, created_at, updated_at \
             FROM rm_bookings WHERE booking_id = ANY($1)",
        )
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?;
        state.bookings = bookings.into_iter().map(|b| (b.booking_id, b)).collect();
        let passengers: Vec<PassengerRow> = sqlx::query_as(
            "SELECT booking_id, passenger_id, ordinal, seat, passenger_type, travels_with, cabin, \
                    fare, first_name, last_name, ticket_number \
             FROM rm_booking_passengers WHERE booking_id = ANY($1)",
        )
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?;
        state.passengers = passengers
            .into_iter()
            .map(|p| ((p.booking_id, p.passenger_id), p))
            .collect();
        Ok(state)
    }

    fn apply(&mut self, d: &Decoded) {
        match &d.event {
            Event::Booking(e) => self.apply_booking(e, d.recorded_at),
            Event::User(UserEvent::UserErased(e)) => {
                // Bookings in this batch are already in memory; the rest
                // are blanked in the database after the write.
                for p in self.passengers.values_mut() {
                    if self
                        .bookings
                        .get(&p.booking_id)
                        .is_some_and(|b| b.customer_id == e.user_id || b.customer_id == e.subject)
                    {
                        p.first_name = None;
                        p.last_name = None;
                        self.dirty_passengers.insert((p.booking_id, p.passenger_id));
                    }
                }
                self.erased_customers.push(e.user_id);
                self.erased_customers.push(e.subject);
            }
            _ => {}
        }
    }

    fn apply_booking(&mut self, e: &BookingEvent, at: DateTime<Utc>) {
        let id = e.booking_id();
        if let BookingEvent::BookingCreated(c) = e {
            let (total, currency) = crate::sql::money(&c.total);
            self.bookings.insert(
                id,
                BookingRow {
                    booking_id: id,
                    pnr: c.pnr.as_str().to_owned(),
                    flight_id: c.flight_id,
                    customer_id: c.customer_id,
                    created_by: c.created_by,
                    status: BookingStatus::Held.as_str().into(),
                    total,
                    currency,
                    discount: c
                        .discount
                        .as_ref()
                        .map_or(Decimal::ZERO, |d| d.amount.amount()),
                    discount_code: c.discount.as_ref().map(|d| d.code.as_str().to_owned()),
                    refund: None,
                    hold_expires_at: c.hold_expires_at,
                    payment_id: None,
                    reason: None,
                    created_at: c.created_at,
                    updated_at: at,
                },
            );
            let details = c.personal.known();
            for (i, p) in c.passengers.iter().enumerate() {
                let personal = details
                    .and_then(|all| all.iter().find(|x| x.passenger_id == p.passenger_id))
                    .map(|x| &x.details);
                let key = (id, p.passenger_id);
                self.passengers.insert(
                    key,
                    PassengerRow {
                        booking_id: id,
                        passenger_id: p.passenger_id,
                        ordinal: i as i16,
                        seat: p.seat.map(|s| s.to_string()),
                        passenger_type: p.kind.as_str().to_owned(),
                        travels_with: p.travels_with,
                        cabin: p.cabin.as_str().to_owned(),
                        fare: p.fare.amount(),
                        first_name: personal.map(|d| d.first_name.clone()),
                        last_name: personal.map(|d| d.last_name.clone()),
                        ticket_number: None,
                    },
                );
                self.dirty_passengers.insert(key);
            }
            for (n, segment) in c.connections.iter().enumerate() {
                for p in &segment.passengers {
                    self.connections.push(ConnectionOp::Booked {
                        booking_id: id,
                        flight_id: segment.flight_id,
                        ordinal: n as i16 + 1,
                        passenger_id: p.passenger_id,
                        seat: p.seat.map(|s| s.to_string()),
                        cabin: p.cabin.as_str().to_owned(),
                        fare: p.fare.amount(),
                    });
                }
            }
            self.dirty_bookings.insert(id);
            return;
        }
        let Some(b) = self.bookings.get_mut(&id) else {
            tracing::warn!(booking = %id, "event for a booking never created");
            return;
        };
        b.updated_at = at;
        self.dirty_bookings.insert(id);
        let status = match e {
            BookingEvent::BookingCreated(_) => return,
            BookingEvent::PaymentSubmitted(p) => {
                b.payment_id = Some(p.payment_id);
                BookingStatus::PaymentPending
            }
            BookingEvent::BookingConfirmed(_) => BookingStatus::Confirmed,
            BookingEvent::BookingPaymentFailed(f) => {
                b.reason = Some(f.reason.clone());
                BookingStatus::PaymentFailed
            }
            BookingEvent::BookingExpired(_) => BookingStatus::Expired,
            BookingEvent::TicketsIssued(t) => {
                for ticket in &t.tickets {
                    if let Some(flight_id) = ticket.flight_id.filter(|f| *f != b.flight_id) {
                        self.connections.push(ConnectionOp::Set {
                            column: ConnectionColumn::Ticket,
                            booking_id: id,
                            flight_id,
                            passenger_id: ticket.passenger_id,
                            value: ticket.ticket_number.as_str().to_owned(),
                        });
                        continue;
                    }
                    let key = (id, ticket.passenger_id);
                    if let Some(p) = self.passengers.get_mut(&key) {
                        p.ticket_number = Some(ticket.ticket_number.as_str().to_owned());
                        self.dirty_passengers.insert(key);
                    }
                }
                BookingStatus::Ticketed
            }
            BookingEvent::BookingFailed(f) => {
                b.reason = Some(f.reason.clone());
                BookingStatus::Failed
            }
            BookingEvent::BookingCancelled(c) => {
                b.reason = Some(c.reason.clone());
                // Passengers taken off earlier were refunded too.
                b.refund = Some(b.refund.unwrap_or_default() + c.refund.amount());
                BookingStatus::Cancelled
            }
            BookingEvent::PassengerCancelled(c) => {
                b.refund = Some(b.refund.unwrap_or_default() + c.refund.amount());
                let key = (id, c.passenger_id);
                self.passengers.remove(&key);
                self.dirty_passengers.remove(&key);
                self.gone_passengers.push(key);
                self.connections.push(ConnectionOp::Gone {
                    booking_id: id,
                    passenger_id: c.passenger_id,
                });
                return;
            }
            BookingEvent::PassengerUpdated(u) => {
                let key = (id, u.passenger_id);
                if let Some(p) = self.passengers.get_mut(&key) {
                    let details = u.personal.known();
                    p.first_name = details.map(|d| d.first_name.clone());
                    p.last_name = details.map(|d| d.last_name.clone());
                    self.dirty_passengers.insert(key);
                }
                return;
            }
            BookingEvent::PassengerSeatChanged(c) => {
                if let Some(flight_id) = c.flight_id.filter(|f| *f != b.flight_id) {
                    self.connections.push(ConnectionOp::Set {
                        column: ConnectionColumn::Seat,
                        booking_id: id,
                        flight_id,
                        passenger_id: c.passenger_id,
                        value: c.to.to_string(),
                    });
                    return;
                }
                let key = (id, c.passenger_id);
                if let Some(p) = self.passengers.get_mut(&key) {
                    p.seat = Some(c.to.to_string());
                    self.dirty_passengers.insert(key);
                }
                return;
            }
            BookingEvent::BookingMoved(m) => {
                b.flight_id = m.to_flight_id;
                b.total = m.total.amount();
                if m.refund.is_positive() {
                    b.refund = Some(b.refund.unwrap_or_default() + m.refund.amount());
                }
                for moved in &m.passengers {
                    let key = (id, moved.passenger_id);
                    if let Some(p) = self.passengers.get_mut(&key) {
                        p.seat = moved.seat.map(|s| s.to_string());
                        p.fare = moved.fare.amount();
                        p.ticket_number = None;
                        self.dirty_passengers.insert(key);
                    }
                }
                // The old flight's tickets are void; new ones follow.
                if b.status == BookingStatus::Ticketed.as_str() {
                    BookingStatus::Confirmed
                } else {
                    return;
                }
            }
            // The booking stays where it is until the difference is paid.
            BookingEvent::BookingMoveHeld(_) => return,
            BookingEvent::BookingMoveAbandoned(a) => {
                if a.refund.is_positive() {
                    b.refund = Some(b.refund.unwrap_or_default() + a.refund.amount());
                }
                return;
            }
        };
        b.status = status.as_str().into();
    }

    async fn write(self, conn: &mut PgConnection) -> Result<()> {
        let bookings: Vec<&BookingRow> = self
            .dirty_bookings
            .iter()
            .filter_map(|id| self.bookings.get(id))
            .collect();
        let passengers: Vec<&PassengerRow> = self
            .dirty_passengers
            .iter()
            .filter_map(|k| self.passengers.get(k))
            .collect();
        // Bookings and passengers in one statement: one round trip per
        // batch (an empty array writes nothing).
        if !bookings.is_empty() || !passengers.is_empty() {
            sqlx::query(
                "WITH bookings AS ( \
                    INSERT INTO rm_bookings (booking_id, pnr, flight_id, customer_id, created_by, status, \
                        total, currency, refund, hold_expires_at, payment_id, reason, created_at, updated_at, \
                        discount, discount_code) \
                     SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::uuid[], $4::uuid[], $5::uuid[], \
                        $6::text[], $7::numeric[], $8::text[], $9::numeric[], $10::timestamptz[], \
                        $11::uuid[], $12::text[], $13::timestamptz[], $14::timestamptz[], \
                        $26::numeric[], $27::text[]) \
                     ON CONFLICT (booking_id) DO UPDATE SET status = excluded.status, \
                        flight_id = excluded.flight_id, total = excluded.total, \
                        refund = excluded.refund, payment_id = excluded.payment_id, \
                        reason = excluded.reason, updated_at = excluded.updated_at) \
                 INSERT INTO rm_booking_passengers (booking_id, passenger_id, ordinal, seat, cabin, \
                    fare, first_name, last_name, ticket_number, passenger_type, travels_with) \
                 SELECT * FROM UNNEST($15::uuid[], $16::uuid[], $17::int2[], $18::text[], $19::text[], \
                    $20::numeric[], $21::text[], $22::text[], $23::text[], $24::text[], $25::uuid[]) \
                 ON CONFLICT (booking_id, passenger_id) DO UPDATE SET first_name = excluded.first_name, \
                    last_name = excluded.last_name, ticket_number = excluded.ticket_number, \
                    seat = excluded.seat, fare = excluded.fare",
            )
            .bind(bookings.iter().map(|b| b.booking_id).collect::<Vec<_>>())
            .bind(bookings.iter().map(|b| b.pnr.clone()).collect::<Vec<_>>())
            .bind(bookings.iter().map(|b| b.flight_id).collect::<Vec<_>>())
            .bind(bookings.iter().map(|b| b.customer_id).collect::<Vec<_>>())
            .bind(bookings.iter().map(|b| b.created_by).collect::<Vec<_>>())
            .bind(bookings.iter().map(|b| b.status.clone()).collect::<Vec<_>>())
            .bind(bookings.iter().map(|b| b.total).collect::<Vec<_>>())
            .bind(bookings.iter().map(|b| b.currency.clone()).collect::<Vec<_>>())
            .bind(bookings.iter().map(|b| b.refund).collect::<Vec<_>>())
            .bind(bookings.iter().map(|b| b.hold_expires_at).collect::<Vec<_>>())
            .bind(bookings.iter().map(|b| b.payment_id).collect::<Vec<_>>())
            .bind(bookings.iter().map(|b| b.reason.clone()).collect::<Vec<_>>())
            .bind(bookings.iter().map(|b| b.created_at).collect::<Vec<_>>())
            .bind(bookings.iter().map(|b| b.updated_at).collect::<Vec<_>>())
            .bind(passengers.iter().map(|p| p.booking_id).collect::<Vec<_>>())
            .bind(passengers.iter().map(|p| p.passenger_id).collect::<Vec<_>>())
            .bind(passengers.iter().map(|p| p.ordinal).collect::<Vec<_>>())
            .bind(passengers.iter().map(|p| p.seat.clone()).collect::<Vec<_>>())
            .bind(passengers.iter().map(|p| p.cabin.clone()).collect::<Vec<_>>())
            .bind(passengers.iter().map(|p| p.fare).collect::<Vec<_>>())
            .bind(passengers.iter().map(|p| p.first_name.clone()).collect::<Vec<_>>())
            .bind(passengers.iter().map(|p| p.last_name.clone()).collect::<Vec<_>>())
            .bind(passengers.iter().map(|p| p.ticket_number.clone()).collect::<Vec<_>>())
            .bind(passengers.iter().map(|p| p.passenger_type.clone()).collect::<Vec<_>>())
            .bind(passengers.iter().map(|p| p.travels_with).collect::<Vec<_>>())
            .bind(bookings.iter().map(|b| b.discount).collect::<Vec<_>>())
            .bind(bookings.iter().map(|b| b.discount_code.clone()).collect::<Vec<_>>())
            .execute(&mut *conn)
            .await?;
        }
        if !self.gone_passengers.is_empty() {
            sqlx::query(
                "DELETE FROM rm_booking_passengers p \
                 USING UNNEST($1::uuid[], $2::uuid[]) AS g(b, p) \
                 WHERE p.booking_id = g.b AND p.passenger_id = g.p",
            )
            .bind(self.gone_passengers.iter().map(|g| g.0).collect::<Vec<_>>())
            .bind(self.gone_passengers.iter().map(|g| g.1).collect::<Vec<_>>())
            .execute(&mut *conn)
            .await?;
        }
        for op in &self.connections {
            op.write(conn).await?;
        }
        // Separately, after: it must see the passengers written above.
        if !self.erased_customers.is_empty() {
            sqlx::query(
                "UPDATE rm_booking_passengers p SET first_name = NULL, last_name = NULL \
                 FROM rm_bookings b WHERE b.booking_id = p.booking_id \
                   AND b.customer_id = ANY($1) AND (p.first_name IS NOT NULL OR p.last_name IS NOT NULL)",
            )
            .bind(&self.erased_customers)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}
