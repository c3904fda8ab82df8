//! The notifier's inbox: a checkpointed follower of the log (run by the
//! projections runner) that queues a delivery per recipient of each event
//! worth telling. Its rows commit with its checkpoint.
//!
//! | event | notification | email to | webhooks |
//! |---|---|---|---|
//! | `TicketsIssued` | `booking.ticketed` (+ its reminder, due 24 h before departure) | the customer, with the e-ticket | yes |
//! | `BookingPaymentFailed` | `booking.payment_failed` | the customer | yes |
//! | `BookingCancelled` | `booking.cancelled` (drops the reminder) | the customer | yes |
//! | `BookingExpired` | `booking.expired` | the customer | yes |
//! | `FlightRescheduled` | `flight.rescheduled` (moves reminders) | each customer still to fly | once per flight |
//! | `FlightCancelled` | `flight.cancelled` (drops reminders) | each customer still to fly | once per flight |
//! | `WaitlistOffered` | `waitlist.offered` | the customer, with the offer's booking and deadline | yes |
//! | `UserRegistered` | `account.verify_email` | the user | no |
//! | `PasswordResetRequested` | `account.password_reset` | the user | no |
//!
//! Delivery ids are derived from the event (and the recipient), so a batch
//! applied twice queues nothing twice.
//!
//! The waiting list lives in the seat inventory streams: the inbox follows
//! the `seats` category for `WaitlistOffered` alone, and drops every other
//! seat event (holds, sales, the line's other moves) before doing anything.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use domain::booking::BookingEvent;
use domain::flight::FlightEvent;
use domain::seats::SeatEvent;
use domain::user::UserEvent;
use projections::{Decoded, Event, Projector};
use serde_json::{json, Value};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::store::{self, Channel, NewDelivery, CHANNEL};

/// The inbox's checkpoint name.
pub const NAME: &str = "notifications";

/// Namespace of delivery ids.
const NAMESPACE: Uuid = Uuid::from_u128(0x3d5e_8a41_7c2b_4f09_b1e6_52a0_9c7d_e413);

/// How long before departure the reminder goes out.
pub fn reminder_lead() -> Duration {
    Duration::hours(24)
}

/// One thing to tell, before it is addressed.
struct Note {
    /// Unique per notification: the event id, or derived from it.
    key: Uuid,
    event_type: &'static str,
    /// The user to email, if anyone.
    email: Option<Uuid>,
    /// Whether webhooks that asked for the type get it.
    webhooks: bool,
    booking_id: Option<Uuid>,
    flight_id: Option<Uuid>,
    occurred_at: DateTime<Utc>,
    due: DateTime<Utc>,
    data: Value,
}

fn derive(key: Uuid, tag: &[u8]) -> Uuid {
    Uuid::new_v5(&NAMESPACE, &[key.as_bytes().as_slice(), tag].concat())
}

pub struct NotificationInbox;

#[async_trait]
impl Projector for NotificationInbox {
    fn name(&self) -> &'static str {
        NAME
    }

    fn categories(&self) -> &'static [&'static str] {
        &["booking", "flight", "user", "seats"]
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "notification_deliveries",
            "notification_flights",
            "notification_bookings",
        ]
    }

    async fn apply(&self, conn: &mut PgConnection, events: &[Decoded]) -> projections::Result<()> {
        // Seat events are most of the log under load: those with nothing
        // to tell cost no query.
        let events: Vec<&Decoded> = events.iter().filter(|e| worth_reading(e)).collect();
        if events.is_empty() {
            return Ok(());
        }
        let webhooks: Vec<(Uuid, Vec<String>)> =
            sqlx::query_as("SELECT webhook_id, events FROM webhooks")
                .fetch_all(&mut *conn)
                .await?;
        let mut queued = 0;
        for e in &events {
            let notes = notes_of(conn, e, &events).await?;
            let position = e.position.to_string();
            let mut rows = vec![];
            for n in notes {
                if let Some(user) = n.email {
                    rows.push(NewDelivery {
                        delivery_id: derive(n.key, b"email"),
                        event_type: n.event_type,
                        channel: Channel::Email,
                        user_id: Some(user),
                        booking_id: n.booking_id,
                        flight_id: n.flight_id,
                        position: position.clone(),
                        occurred_at: n.occurred_at,
                        data: n.data.clone(),
                        due: n.due,
                    });
                }
                if n.webhooks {
                    for (webhook_id, wanted) in &webhooks {
                        if wanted.iter().any(|w| w == n.event_type) {
                            rows.push(NewDelivery {
                                delivery_id: derive(n.key, webhook_id.as_bytes()),
                                event_type: n.event_type,
                                channel: Channel::Webhook(*webhook_id),
                                user_id: None,
                                booking_id: n.booking_id,
                                flight_id: n.flight_id,
                                position: position.clone(),
                                occurred_at: n.occurred_at,
                                data: n.data.clone(),
                                due: n.due,
                            });
                        }
                    }
                }
            }
            queued += rows.len();
            store::queue(conn, &rows).await?;
        }
        if queued > 0 {
            // Delivered at commit, to the workers of every process.
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(CHANNEL)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }
}

/// Whether the inbox has anything to do with `e`: of the seat events, only
/// an offer to the waiting list.
fn worth_reading(e: &Decoded) -> bool {
    match &e.event {
        Event::Seats(s) => matches!(s, SeatEvent::WaitlistOffered(_)),
        _ => true,
    }
}

/// The PNR of the booking that holds a waiting-list offer. Its
/// `BookingCreated` is appended with the offer, before or after it: the
/// inbox has recorded it already, or it is further on in `batch` (unless
/// the batch ended between the two, when there is no PNR to tell).
async fn offer_pnr(
    conn: &mut PgConnection,
    batch: &[&Decoded],
    booking_id: Uuid,
) -> sqlx::Result<Option<String>> {
    if let Some((_, _, pnr)) = booking(conn, booking_id).await? {
        return Ok(Some(pnr));
    }
    Ok(batch.iter().find_map(|d| match &d.event {
        Event::Booking(BookingEvent::BookingCreated(c)) if c.booking_id == booking_id => {
            Some(c.pnr.as_str().to_owned())
        }
        _ => None,
    }))
}

/// The booking's customer and reference, as the inbox recorded them.
async fn booking(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<(Uuid, Uuid, String)>> {
    sqlx::query_as(
        "SELECT customer_id, flight_id, pnr FROM notification_bookings WHERE booking_id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
}

async fn set_live(conn: &mut PgConnection, id: Uuid, live: bool) -> sqlx::Result<()> {
    sqlx::query("UPDATE notification_bookings SET live = $2 WHERE booking_id = $1")
        .bind(id)
        .bind(live)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A booking's pending reminders will not be needed.
async fn drop_reminders_of_booking(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE notification_deliveries SET status = 'SKIPPED', last_error = 'booking ended' \
         WHERE booking_id = $1 AND event_type = 'booking.reminder' AND status = 'PENDING'",
    )
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A flight event told to each customer still to fly on it, and once to
/// webhooks.
async fn flight_notes(
    conn: &mut PgConnection,
    e: &Decoded,
    flight_id: Uuid,
    event_type: &'static str,
    at: DateTime<Utc>,
    data: Value,
) -> sqlx::Result<Vec<Note>> {
    let customers: Vec<(Uuid, Uuid, String)> = sqlx::query_as(
        "SELECT booking_id, customer_id, pnr FROM notification_bookings \
         WHERE (flight_id = $1 OR connections @> ARRAY[$1]::uuid[]) AND live \
         ORDER BY booking_id",
    )
    .bind(flight_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut notes = vec![Note {
        key: e.event_id,
        event_type,
        email: None,
        webhooks: true,
        booking_id: None,
        flight_id: Some(flight_id),
        occurred_at: at,
        due: at,
        data: data.clone(),
    }];
    for (booking_id, customer, pnr) in customers {
        let mut data = data.clone();
        data["booking_id"] = json!(booking_id);
        data["pnr"] = json!(pnr);
        notes.push(Note {
            key: derive(e.event_id, booking_id.as_bytes()),
            event_type,
            email: Some(customer),
            webhooks: false,
            booking_id: Some(booking_id),
            flight_id: Some(flight_id),
            occurred_at: at,
            due: at,
            data,
        });
    }
    Ok(notes)
}

/// What `e` (one of `batch`) has to tell, after updating what the inbox
/// keeps.
async fn notes_of(
    conn: &mut PgConnection,
    e: &Decoded,
    batch: &[&Decoded],
) -> sqlx::Result<Vec<Note>> {
    let note = |event_type, email, booking_id, flight_id, at, data| Note {
        key: e.event_id,
        event_type,
        email,
        webhooks: true,
        booking_id,
        flight_id,
        occurred_at: at,
        due: at,
        data,
    };
    Ok(match &e.event {
        Event::Flight(FlightEvent::FlightScheduled(f)) => {
            sqlx::query(
                "INSERT INTO notification_flights (flight_id, flight_number, origin, \
                     destination, departs_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (flight_id) DO NOTHING",
            )
            .bind(f.flight_id)
            .bind(f.flight_number.as_str())
            .bind(f.origin.as_str())
            .bind(f.destination.as_str())
            .bind(f.departs_at)
            .execute(&mut *conn)
            .await?;
            vec![]
        }
        Event::Flight(FlightEvent::FlightRescheduled(r)) => {
            sqlx::query("UPDATE notification_flights SET departs_at = $2 WHERE flight_id = $1")
                .bind(r.flight_id)
                .bind(r.departs_at)
                .execute(&mut *conn)
                .await?;
            // Reminders follow the flight; one that would now be late
            // goes out at once.
            sqlx::query(
                "UPDATE notification_deliveries \
                 SET next_attempt_at = $2, data = jsonb_set(data, '{departs_at}', to_jsonb($3)) \
                 WHERE flight_id = $1 AND event_type = 'booking.reminder' AND status = 'PENDING'",
            )
            .bind(r.flight_id)
            .bind(r.departs_at - reminder_lead())
            .bind(r.departs_at)
            .execute(&mut *conn)
            .await?;
            let data = json!({
                "flight_id": r.flight_id,
                "departs_at": r.departs_at,
                "arrives_at": r.arrives_at,
                "previous_departs_at": r.previous_departs_at,
            });
            flight_notes(
                conn,
                e,
                r.flight_id,
                "flight.rescheduled",
                r.rescheduled_at,
                data,
            )
            .await?
        }
        Event::Flight(FlightEvent::FlightCancelled(c)) => {
            sqlx::query(
                "UPDATE notification_deliveries SET status = 'SKIPPED', \
                     last_error = 'flight cancelled' \
                 WHERE flight_id = $1 AND event_type = 'booking.reminder' AND status = 'PENDING'",
            )
            .bind(c.flight_id)
            .execute(&mut *conn)
            .await?;
            let data = json!({ "flight_id": c.flight_id, "reason": c.reason });
            flight_notes(
                conn,
                e,
                c.flight_id,
                "flight.cancelled",
                c.cancelled_at,
                data,
            )
            .await?
        }
        Event::Booking(BookingEvent::BookingCreated(c)) => {
            sqlx::query(
                "INSERT INTO notification_bookings \
                     (booking_id, customer_id, flight_id, pnr, connections) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (booking_id) DO NOTHING",
            )
            .bind(c.booking_id)
            .bind(c.customer_id)
            .bind(c.flight_id)
            .bind(c.pnr.as_str())
            .bind(
                c.connections
                    .iter()
                    .map(|s| s.flight_id)
                    .collect::<Vec<_>>(),
            )
            .execute(&mut *conn)
            .await?;
            vec![]
        }
        Event::Booking(BookingEvent::TicketsIssued(t)) => {
            let Some((customer, flight_id, pnr)) = booking(conn, t.booking_id).await? else {
                return Ok(vec![]);
            };
            let data = json!({
                "booking_id": t.booking_id,
                "pnr": pnr,
                "flight_id": flight_id,
                "tickets": t.tickets.iter().map(|i| i.ticket_number.as_str()).collect::<Vec<_>>(),
            });
            let mut notes = vec![note(
                "booking.ticketed",
                Some(customer),
                Some(t.booking_id),
                Some(flight_id),
                t.issued_at,
                data,
            )];
            let departs: Option<DateTime<Utc>> = sqlx::query_scalar(
                "SELECT departs_at FROM notification_flights WHERE flight_id = $1",
            )
            .bind(flight_id)
            .fetch_optional(&mut *conn)
            .await?;
            // Ticketed within a day of departure, the ticket mail is the
            // reminder.
            if let Some(departs) = departs.filter(|d| *d - reminder_lead() > t.issued_at) {
                let due = departs - reminder_lead();
                notes.push(Note {
                    key: derive(t.booking_id, b"reminder"),
                    event_type: "booking.reminder",
                    email: Some(customer),
                    webhooks: true,
                    booking_id: Some(t.booking_id),
                    flight_id: Some(flight_id),
                    occurred_at: due,
                    due,
                    data: json!({
                        "booking_id": t.booking_id,
                        "pnr": pnr,
                        "flight_id": flight_id,
                        "departs_at": departs,
                    }),
                });
            }
            notes
        }
        Event::Booking(BookingEvent::BookingPaymentFailed(f)) => {
            let Some((customer, flight_id, pnr)) = booking(conn, f.booking_id).await? else {
                return Ok(vec![]);
            };
            let data = json!({
                "booking_id": f.booking_id,
                "pnr": pnr,
                "flight_id": flight_id,
                "reason": f.reason,
            });
            vec![note(
                "booking.payment_failed",
                Some(customer),
                Some(f.booking_id),
                Some(flight_id),
                e.recorded_at,
                data,
            )]
        }
        Event::Booking(BookingEvent::BookingCancelled(c)) => {
            set_live(conn, c.booking_id, false).await?;
            drop_reminders_of_booking(conn, c.booking_id).await?;
            let Some((customer, flight_id, pnr)) = booking(conn, c.booking_id).await? else {
                return Ok(vec![]);
            };
            let data = json!({
                "booking_id": c.booking_id,
                "pnr": pnr,
                "flight_id": flight_id,
                "reason": c.reason,
                "refund": { "amount": c.refund.amount().to_string(), "currency": c.refund.currency().as_str() },
            });
            vec![note(
                "booking.cancelled",
                Some(customer),
                Some(c.booking_id),
                Some(flight_id),
                c.cancelled_at,
                data,
            )]
        }
        Event::Booking(BookingEvent::BookingExpired(x)) => {
            set_live(conn, x.booking_id, false).await?;
            let Some((customer, flight_id, pnr)) = booking(conn, x.booking_id).await? else {
                return Ok(vec![]);
            };
            let data = json!({ "booking_id": x.booking_id, "pnr": pnr, "flight_id": flight_id });
            vec![note(
                "booking.expired",
                Some(customer),
                Some(x.booking_id),
                Some(flight_id),
                x.expired_at,
                data,
            )]
        }
        Event::Seats(SeatEvent::WaitlistOffered(o)) => {
            // The seats stream is the flight's.
            let flight_id = e.aggregate_id;
            let pnr = offer_pnr(conn, batch, o.booking_id).await?;
            let data = json!({
                "entry_id": o.entry_id,
                "booking_id": o.booking_id,
                "pnr": pnr,
                "flight_id": flight_id,
                "customer_id": o.customer_id,
                "expires_at": o.expires_at,
            });
            vec![note(
                "waitlist.offered",
                Some(o.customer_id),
                Some(o.booking_id),
                flight_id,
                e.recorded_at,
                data,
            )]
        }
        Event::User(UserEvent::UserRegistered(r)) => vec![Note {
            webhooks: false,
            ..note(
                "account.verify_email",
                Some(r.user_id),
                None,
                None,
                r.registered_at,
                json!({ "user_id": r.user_id }),
            )
        }],
        Event::User(UserEvent::PasswordResetRequested(r)) => vec![Note {
            webhooks: false,
            ..note(
                "account.password_reset",
                Some(r.user_id),
                None,
                None,
                r.requested_at,
                json!({ "user_id": r.user_id, "token_id": r.token_id, "expires_at": r.expires_at }),
            )
        }],
        _ => vec![],
    })
}
