//! The waiting list of a sold-out cabin: join, withdraw, and serve (the
//! offer of seats that came back, run by the waiting-list process manager).
//! Every one is decided on the flight's lane, against the seat inventory
//! that keeps the line (see [`domain::waitlist`]).

use chrono::Duration;
use domain::flight::Flight;
use domain::seats::SeatCommand;
use domain::values::{Cabin, Role};
use domain::waitlist::{serve_waitlist, JoinWaitlist, ServeWaitlist, WaitingPassenger};
use domain::Aggregate;
use serde_json::json;
use uuid::Uuid;

use crate::bookings::{parse_passengers, NewPassenger};
use crate::command::lane::{BookingRef, Decided};
use crate::error::{place_error, seat_error, CommandError, CommandResult};
use crate::{CommandContext, Outcome, Services};
use auth::Caller;

/// A party asking for a place in line.
#[derive(Debug, Clone)]
pub struct JoinWaitlistInput {
    pub flight_id: Uuid,
    /// Agents queue a customer; customers queue themselves.
    pub customer_id: Option<Uuid>,
    pub cabin: Cabin,
    /// As a booking's, without seats: an offer is any seat of `cabin`.
    pub passengers: Vec<NewPassenger>,
}

/// What serving a flight's line did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServedLine {
    /// Something was appended (an offer made, settled or lapsed): serve
    /// again, more may follow.
    pub changed: bool,
    pub offered: Option<Uuid>,
}

impl Services {
    /// Puts the caller's party (an agent: a customer's) in the line of a
    /// sold-out cabin. Replies `{entry_id, place}`.
    pub async fn join_waitlist(
        &self,
        caller: &Caller,
        ctx: CommandContext,
        input: JoinWaitlistInput,
    ) -> CommandResult<Outcome> {
        caller.require(&[Role::Customer, Role::Agent])?;
        let customer_id = self.customer_for(caller, input.customer_id).await?;
        if let Some(i) = input.passengers.iter().position(|p| p.seat.is_some()) {
            return Err(CommandError::invalid(
                format!("passengers[{i}].seat"),
                "a waiting list offers any seat of its cabin: name no seat",
            ));
        }
        let passengers: Vec<NewPassenger> = input
            .passengers
            .into_iter()
            .map(|mut p| {
                if p.kind != domain::booking::PassengerType::Infant {
                    p.cabin = Some(input.cabin);
                }
                p
            })
            .collect();
        let parsed = parse_passengers(passengers)?;
        if parsed.is_empty() || parsed.len() > domain::booking::MAX_PASSENGERS {
            return Err(CommandError::invalid(
                "passengers",
                format!(
                    "between 1 and {} passengers",
                    domain::booking::MAX_PASSENGERS
                ),
            ));
        }
        let now = ctx.now;
        for p in &parsed {
            domain::booking::validate_details(p.details.clone(), now.date_naive())
                .map_err(crate::error::booking_error)?;
        }
        let entry_id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO waitlist_entry_flights (entry_id, flight_id, customer_id) \
             VALUES ($1, $2, $3)",
        )
        .bind(entry_id)
        .bind(input.flight_id)
        .bind(customer_id)
        .execute(&self.pool)
        .await?;
        let join = JoinWaitlist {
            entry_id,
            customer_id,
            cabin: input.cabin,
            passengers: parsed
                .iter()
                .map(|p| WaitingPassenger {
                    passenger_id: p.passenger_id,
                    kind: p.kind,
                    travels_with: p.travels_with,
                })
                .collect(),
            details: parsed.into_iter().map(|p| p.details).collect(),
            now,
        };
        let mut ctx = ctx;
        ctx.data_subject = Some(customer_id);
        self.commands
            .lanes
            .submit(
                input.flight_id,
                ctx,
                None,
                Box::new(move |flight, seats, _, _| {
                    open_for_sale(flight, now)?;
                    let events = seats
                        .decide(SeatCommand::JoinWaitlist(join.clone()))
                        .map_err(seat_error)?;
                    let after = events.iter().fold(seats.clone(), |s, e| s.evolve(e));
                    Ok(Decided {
                        seats: events,
                        reply: json!({
                            "entry_id": entry_id,
                            "place": after.place_in_line(entry_id),
                        }),
                        ..Decided::default()
                    })
                }),
            )
            .await
    }

    /// Takes a waiting entry out of the line (its owner, an agent or an
    /// admin).
    pub async fn leave_waitlist(
        &self,
        caller: &Caller,
        ctx: CommandContext,
        entry_id: Uuid,
    ) -> CommandResult<Outcome> {
        caller.require(&[Role::Customer, Role::Agent, Role::Admin])?;
        let row: Option<(Uuid, Uuid)> = sqlx::query_as(
            "SELECT flight_id, customer_id FROM waitlist_entry_flights WHERE entry_id = $1",
        )
        .bind(entry_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some((flight_id, customer_id)) = row else {
            return Err(CommandError::not_found("waiting-list entry"));
        };
        if caller.role == Role::Customer && customer_id != caller.user_id {
            return Err(CommandError::Forbidden(
                "this waiting-list entry belongs to someone else".into(),
            ));
        }
        self.commands
            .lanes
            .submit(
                flight_id,
                ctx,
                None,
                Box::new(move |_, seats, _, _| {
                    let events = seats
                        .decide(SeatCommand::WithdrawWaitlist { entry_id })
                        .map_err(seat_error)?;
                    Ok(Decided {
                        seats: events,
                        reply: json!({ "entry_id": entry_id }),
                        ..Decided::default()
                    })
                }),
            )
            .await
    }

    /// Serves a flight's line once: settles offers, closes the line of a
    /// cancelled or departed flight, and offers free seats to the first
    /// entry they fit as a `HELD` booking until the offer deadline. The
    /// caller (the waiting-list process manager) serves again while
    /// `changed`.
    pub async fn serve_waitlist(
        &self,
        ctx: CommandContext,
        flight_id: Uuid,
    ) -> CommandResult<ServedLine> {
        let booking_id = Uuid::now_v7();
        let pnr = self.new_pnr().await?;
        let now = ctx.now;
        let ttl =
            Duration::from_std(self.settings.waitlist_offer_ttl).unwrap_or(Duration::minutes(15));
        let cmd = ServeWaitlist {
            booking_id,
            pnr,
            offer_expires_at: now + ttl,
            now,
        };
        let outcome = self
            .commands
            .lanes
            .submit(
                flight_id,
                ctx,
                Some(BookingRef::new(booking_id)),
                Box::new(move |flight, seats, _, _| {
                    let served = serve_waitlist(flight, seats, cmd.clone()).map_err(place_error)?;
                    Ok(Decided {
                        reply: json!({
                            "changed": !served.seats.is_empty(),
                            "offered": served.offered,
                            "booking_id": served.offered.map(|_| booking_id),
                        }),
                        seats: served.seats,
                        booking: served.booking,
                        ..Decided::default()
                    })
                }),
            )
            .await?;
        Ok(ServedLine {
            changed: outcome.reply["changed"].as_bool().unwrap_or(false),
            offered: outcome.reply["offered"]
                .as_str()
                .and_then(|s| s.parse().ok()),
        })
    }
}

/// A line is joined only on a flight still on sale.
fn open_for_sale(flight: &Flight, now: chrono::DateTime<chrono::Utc>) -> CommandResult<()> {
    if flight.id().is_none() {
        return Err(CommandError::not_found("flight"));
    }
    if flight.is_cancelled() {
        return Err(CommandError::InvalidState("flight is cancelled".into()));
    }
    if flight.has_departed(now) {
        return Err(CommandError::InvalidState("flight has departed".into()));
    }
    Ok(())
}
