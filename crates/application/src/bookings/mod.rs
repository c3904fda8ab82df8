//! Bookings: create (seats held atomically with the booking), cancel (seats
//! given back in the same append), passenger edits, seat changes (the new
//! seat taken and the old one given back in the same append), moves.
//! [`input`]: what a request names, parsed into the domain's requests.

mod input;

use input::parse_itinerary;
pub(crate) use input::parse_passengers;
pub use input::{CreateBooking, NewPassenger, PassengerChanges};

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use domain::booking::{
    cancel_booking, cancel_passenger, change_seat, move_booking, place_booking, place_itinerary,
    Booking, BookingCommand, BookingEvent, BookingInfo, CancelBooking, CancelBookingError,
    CancelPassenger, CancelledBy, ChangeSeat, FlightSeats, MoveBooking, Passenger, PlaceBooking,
    PlaceItinerary, MAX_FLIGHTS,
};
use domain::discount::{Code, DiscountError};
use domain::payment::{Payment, PaymentCommand};
use domain::user::User;
use domain::values::{Money, Personal, Role, Seat};
use domain::Aggregate;
use rand::RngCore;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::command::across::{AcrossDecided, OnFlights};
use crate::command::lane::{BookingRef, Decided};
use crate::error::{
    booking_error, change_seat_error, move_error, place_error, seat_error, CommandError,
    CommandResult,
};
use crate::{CommandContext, Outcome, Services};
use auth::Caller;

/// How many times a booking that redeems a code is submitted while it keeps
/// losing the race for the code to other flights' lanes.
const CODE_ROUNDS: usize = 5;

impl Services {
    /// A booking reference no other booking has, drawn at random.
    pub(crate) async fn new_pnr(&self) -> CommandResult<domain::values::Pnr> {
        self.pnrs
            .next(|| {
                let mut bytes = [0u8; 6];
                rand::thread_rng().fill_bytes(&mut bytes);
                bytes
            })
            .await
    }

    /// Whose booking (or place in line) a caller asks for: an agent's
    /// `customer_id` must name a customer who exists and was not erased;
    /// anyone else acts for themselves only.
    pub(crate) async fn customer_for(
        &self,
        caller: &Caller,
        customer_id: Option<Uuid>,
    ) -> CommandResult<Uuid> {
        match (caller.role, customer_id) {
            (Role::Agent, Some(customer)) if customer != caller.user_id => {
                let user = self.commands.load::<User>(customer).await?;
                if user.version == 0 || user.state.personal.is_erased() {
                    return Err(CommandError::invalid("customer_id", "no such customer"));
                }
                Ok(customer)
            }
            (_, Some(customer)) if customer != caller.user_id => Err(CommandError::Forbidden(
                "only agents act for someone else".into(),
            )),
            _ => Ok(caller.user_id),
        }
    }

    /// Holds the seats and creates the booking, both or neither. Replies
    /// with the booking's summary.
    pub async fn create_booking(
        &self,
        caller: &Caller,
        ctx: CommandContext,
        input: CreateBooking,
    ) -> CommandResult<Outcome> {
        caller.require(&[Role::Customer, Role::Agent])?;
        let customer_id = self.customer_for(caller, input.customer_id).await?;
        let flights = input.flights.clone();
        let (passengers, connections) = match &flights[..] {
            [] => return Err(CommandError::invalid("flights", "name at least one flight")),
            [_] => (parse_passengers(input.passengers)?, vec![]),
            many if many.len() > MAX_FLIGHTS => {
                return Err(CommandError::invalid(
                    "flights",
                    format!("a booking holds at most {MAX_FLIGHTS} flights"),
                ))
            }
            many => parse_itinerary(input.passengers, many)?,
        };
        // A code that cannot exist is as unknown as one that does not.
        let discount = match &input.discount_code {
            Some(code) => Some(Code::parse(code).map_err(|_| {
                CommandError::DiscountUnavailable(DiscountError::Unknown.to_string())
            })?),
            None => None,
        };
        // Seats counted per passenger, as the holdings index counts them
        // (an itinerary's further flights are not counted again).
        let seats = passengers.iter().filter(|p| p.seat.is_some()).count() as u32;
        let booking_id = Uuid::now_v7();
        let reservation = match self.settings.hold_caps {
            Some(caps) => {
                let ours = self.ledger.ours(customer_id);
                let known = self
                    .holdings
                    .unpaid(customer_id, &ours)
                    .await
                    .map_err(CommandError::Internal)?;
                Some(
                    self.ledger
                        .reserve(caps, customer_id, booking_id, seats, &known)?,
                )
            }
            None => None,
        };
        let pnr = self.new_pnr().await?;
        let now = ctx.now;
        let hold = Duration::from_std(self.settings.hold_ttl).unwrap_or(Duration::minutes(10));
        let place = PlaceBooking {
            booking_id,
            pnr,
            customer_id,
            created_by: caller.user_id,
            passengers,
            hold_expires_at: now + hold,
            now,
        };
        // The reply names the customer's passengers: its record is theirs.
        let mut ctx = ctx;
        ctx.data_subject = Some(customer_id);
        let outcome = if connections.is_empty() {
            self.place_on_lane(flights[0], ctx, booking_id, place, discount)
                .await
        } else {
            let itinerary = PlaceItinerary {
                booking: place,
                connections,
            };
            self.place_across(&flights, ctx, booking_id, itinerary, discount)
                .await
        };
        // A replayed twin made no booking of its own.
        if let (Some(reservation), Ok(o)) = (reservation, &outcome) {
            if !o.replayed {
                reservation.keep();
            }
        }
        outcome
    }

    /// Places a booking of one flight on that flight's lane.
    async fn place_on_lane(
        &self,
        flight_id: Uuid,
        ctx: CommandContext,
        booking_id: Uuid,
        place: PlaceBooking,
        discount: Option<Code>,
    ) -> CommandResult<Outcome> {
        // A code redeemed on several flights at once is contended across
        // their lanes: a booking that lost every round to other lanes is
        // tried again (nothing of it was written), so that it ends with the
        // code's answer, not a contention error.
        let rounds = if discount.is_some() { CODE_ROUNDS } else { 1 };
        let mut outcome = Err(CommandError::contention());
        for _ in 0..rounds {
            let place = place.clone();
            outcome = self
                .commands
                .lanes
                .submit_with_discount(
                    flight_id,
                    ctx.clone(),
                    Some(BookingRef::new(booking_id)),
                    discount.as_ref().map(Code::stream_uuid),
                    Box::new(move |flight, seats, _new, code| {
                        let placed = place_booking(flight, seats, code, place.clone())
                            .map_err(place_error)?;
                        let booking = placed
                            .booking
                            .iter()
                            .fold(Booking::default(), |b, e| b.evolve(e));
                        Ok(Decided {
                            seats: placed.seats,
                            booking: placed.booking,
                            discount: placed.discount,
                            reply: summary(&booking),
                            ..Decided::default()
                        })
                    }),
                )
                .await;
            if !matches!(outcome, Err(CommandError::Concurrency(_))) {
                break;
            }
        }
        outcome
    }

    /// Places a booking of several flights beside their lanes (see
    /// [`crate::command::across`]): every flight's seats, the booking and
    /// the code's use in one append, or nothing.
    async fn place_across(
        &self,
        flights: &[Uuid],
        ctx: CommandContext,
        booking_id: Uuid,
        itinerary: PlaceItinerary,
        discount: Option<Code>,
    ) -> CommandResult<Outcome> {
        let code = discount.as_ref().map(Code::stream_uuid);
        self.commands
            .across_flights_redeeming(&ctx, booking_id, flights, code, |_, read, code| {
                let pairs: Vec<FlightSeats<'_>> =
                    read.iter().map(|f| (&f.flight, &f.seats)).collect();
                let placed =
                    place_itinerary(&pairs, code, itinerary.clone()).map_err(place_error)?;
                let booking = Booking::fold(&placed.booking);
                Ok(AcrossDecided {
                    booking: placed.booking,
                    seats: placed.seats,
                    discount: placed.discount,
                    reply: summary(&booking),
                    ..AcrossDecided::default()
                })
            })
            .await
    }

    /// Cancels a booking: refund by policy, seats back on sale.
    pub async fn cancel_booking(
        &self,
        caller: &Caller,
        ctx: CommandContext,
        id: Uuid,
        reason: String,
    ) -> CommandResult<Outcome> {
        let loaded = self.commands.load::<Booking>(id).await?;
        owned_by(&loaded.state, caller)?;
        let (by, now) = (cancelled_by(caller), ctx.now);
        self.on_its_flight(id, loaded, ctx, cancellation(reason, by, now))
            .await
    }

    /// Runs a decision on the booking and its flights' seats: on the lane
    /// of a booking's one flight, across every flight of an itinerary. A
    /// booking that moved to another flight after it was read is refused by
    /// the old flight's lane: it is read again and the command goes to its
    /// new flight's lane, so that a cancellation racing a move still lands.
    async fn on_its_flight(
        &self,
        id: Uuid,
        loaded: crate::command::Loaded<Booking>,
        ctx: CommandContext,
        decision: OnFlights,
    ) -> CommandResult<Outcome> {
        let mut loaded = loaded;
        let mut tries = 0;
        loop {
            let flights = loaded.state.flight_ids();
            let outcome = self
                .commands
                .on_its_flights(&ctx, id, loaded, decision.clone())
                .await;
            tries += 1;
            if tries >= 3 || !matches!(outcome, Err(CommandError::Concurrency(_))) {
                return outcome;
            }
            loaded = self.commands.load::<Booking>(id).await?;
            if loaded.state.flight_ids() == flights {
                return outcome;
            }
        }
    }

    /// Takes one passenger of several off a booking: their share refunded
    /// by the policy, their seat back on sale, in one append.
    pub async fn cancel_passenger(
        &self,
        caller: &Caller,
        ctx: CommandContext,
        id: Uuid,
        passenger_id: Uuid,
        reason: String,
    ) -> CommandResult<Outcome> {
        let loaded = self.commands.load::<Booking>(id).await?;
        owned_by(&loaded.state, caller)?;
        let by = cancelled_by(caller);
        let now = ctx.now;
        let decision: OnFlights = Arc::new(move |booking, flights| {
            if !booking
                .passengers
                .iter()
                .chain(booking.cancelled.iter().map(|c| &c.passenger))
                .any(|p| p.passenger_id == passenger_id)
            {
                return Err(CommandError::not_found("passenger"));
            }
            let command = CancelPassenger {
                passenger_id,
                reason: reason.clone(),
                by,
                now,
            };
            let (events, seat_events) =
                cancel_passenger(booking, flights, command).map_err(cancel_error)?;
            let refund = events.iter().find_map(|e| match e {
                BookingEvent::PassengerCancelled(c) => Some(c.refund),
                _ => None,
            });
            let reply = json!({ "booking_id": id, "passenger_id": passenger_id, "refund": refund });
            Ok((events, seat_events, reply))
        });
        self.on_its_flight(id, loaded, ctx, decision).await
    }

    /// Moves a passenger to another seat of the same cabin, on the flight's
    /// lane: the new seat takes over the old one's hold or sale and the old
    /// one goes back on sale in the same append. `flight_id` names the
    /// flight of an itinerary whose seat changes (beside its lane, as
    /// commands over an itinerary run).
    pub async fn change_seat(
        &self,
        caller: &Caller,
        ctx: CommandContext,
        id: Uuid,
        passenger_id: Uuid,
        seat: String,
        flight_id: Option<Uuid>,
    ) -> CommandResult<Outcome> {
        caller.require(&[Role::Customer, Role::Agent, Role::Admin])?;
        let seat = Seat::parse(&seat).map_err(|e| CommandError::invalid("seat", e.to_string()))?;
        let loaded = self.commands.load::<Booking>(id).await?;
        let customer_id = owned_by(&loaded.state, caller)?.customer_id;
        let flights = loaded.state.flight_ids();
        if flight_id.is_some_and(|f| !flights.contains(&f)) {
            return Err(CommandError::invalid(
                "flight_id",
                "this booking is not on that flight",
            ));
        }
        // The reply names the customer's passengers: its record is theirs.
        let mut ctx = ctx;
        ctx.data_subject = Some(customer_id);
        let decision = seat_change(passenger_id, seat, ctx.now);
        if !loaded.state.is_itinerary() {
            return self.on_its_flight(id, loaded, ctx, decision).await;
        }
        let Some(flight_id) = flight_id else {
            return Err(CommandError::invalid(
                "flight_id",
                "name the flight of the itinerary whose seat changes",
            ));
        };
        self.commands
            .on_flights(&ctx, id, &[flight_id], decision)
            .await
    }

    /// Moves a booking to another flight of the same route: the seats on
    /// both flights and the booking change in one append (see
    /// [`crate::command::across`]); a paid booking's cheaper fare is
    /// refunded by its fulfilment saga, and a ticketed one gets new tickets
    /// from it. A paid booking moving to a dearer flight holds the new
    /// seats and appends the payment of the difference, on the card of its
    /// first payment, in the same transaction: the saga charges it, then
    /// completes the move (or lets it go).
    pub async fn move_booking(
        &self,
        caller: &Caller,
        ctx: CommandContext,
        id: Uuid,
        from_flight_id: Uuid,
        to_flight_id: Uuid,
    ) -> CommandResult<Outcome> {
        caller.require(&[Role::Customer, Role::Agent, Role::Admin])?;
        let loaded = self.commands.load::<Booking>(id).await?;
        let customer_id = owned_by(&loaded.state, caller)?.customer_id;
        // The card a difference would be charged to; a payment's request
        // never changes once made.
        let card = match loaded.state.payment_id {
            Some(payment_id) => {
                self.commands
                    .load::<Payment>(payment_id)
                    .await?
                    .state
                    .requested
            }
            None => None,
        };
        // The reply names the customer's passengers: its record is theirs.
        let mut ctx = ctx;
        ctx.data_subject = Some(customer_id);
        let now = ctx.now;
        // One id for every attempt: a retried decision names the same
        // payment.
        let supplement_id = Uuid::now_v7();
        self.commands
            .across_flights(
                &ctx,
                id,
                &[from_flight_id, to_flight_id],
                |booking, flights| {
                    let [from, to] = flights else {
                        return Err(CommandError::not_found("flight"));
                    };
                    let moved = move_booking(
                        booking,
                        (&from.flight, &from.seats),
                        (&to.flight, &to.seats),
                        MoveBooking {
                            from_flight_id,
                            to_flight_id,
                            supplement_id,
                            now,
                        },
                    )
                    .map_err(move_error)?;
                    let payments = match moved.charge {
                        Some(amount) => {
                            let card = card.as_ref().ok_or_else(|| {
                                CommandError::InvalidState(
                                    "the booking's payment has no card to charge the difference to"
                                        .into(),
                                )
                            })?;
                            let events = Payment::default()
                                .decide(PaymentCommand::Request {
                                    payment_id: supplement_id,
                                    booking_id: id,
                                    amount,
                                    card_brand: card.card_brand.clone(),
                                    card_last4: card.card_last4.clone(),
                                    card_token: card.card_token.clone(),
                                    now,
                                })
                                .map_err(CommandError::internal)?;
                            vec![(supplement_id, events)]
                        }
                        None => vec![],
                    };
                    let after = moved
                        .booking
                        .iter()
                        .fold(booking.clone(), |b, e| b.evolve(e));
                    let currency = after.info.as_ref().map(|i| i.total.currency());
                    let refund = moved
                        .booking
                        .iter()
                        .find_map(|e| match e {
                            BookingEvent::BookingMoved(m) => Some(m.refund),
                            _ => None,
                        })
                        .or(currency.map(Money::zero));
                    let mut reply = summary(&after);
                    reply["refund"] = json!(refund);
                    reply["charge"] = json!(moved.charge.or(currency.map(Money::zero)));
                    Ok(AcrossDecided {
                        booking: moved.booking,
                        seats: vec![moved.from_seats, moved.to_seats],
                        payments,
                        reply,
                        ..AcrossDecided::default()
                    })
                },
            )
            .await
    }

    /// Corrects a passenger's details (until tickets are issued).
    pub async fn update_passenger(
        &self,
        caller: &Caller,
        ctx: CommandContext,
        id: Uuid,
        passenger_id: Uuid,
        changes: PassengerChanges,
    ) -> CommandResult<Outcome> {
        // Ownership is checked on the state the command is decided on.
        let now = ctx.now;
        self.commands
            .execute::<Booking, _, _>(
                &ctx,
                id,
                |booking| {
                    owned_by(booking, caller)?;
                    let current = booking
                        .passengers
                        .iter()
                        .find(|p| p.passenger_id == passenger_id)
                        .ok_or_else(|| CommandError::not_found("passenger"))?;
                    let Personal::Known(details) = &current.personal else {
                        return Err(CommandError::InvalidState(
                            "the passenger's personal data was erased".into(),
                        ));
                    };
                    let mut details = details.clone();
                    let c = changes.clone();
                    if let Some(v) = c.first_name {
                        details.first_name = v;
                    }
                    if let Some(v) = c.last_name {
                        details.last_name = v;
                    }
                    if let Some(v) = c.date_of_birth {
                        details.date_of_birth = v;
                    }
                    if let Some(v) = c.email {
                        details.email = Some(v);
                    }
                    if let Some(v) = c.phone {
                        details.phone = Some(v);
                    }
                    if let Some(v) = c.passport {
                        details.passport = Some(v);
                    }
                    booking
                        .decide(BookingCommand::UpdatePassenger {
                            passenger_id,
                            details,
                            now,
                        })
                        .map_err(booking_error)
                },
                |booking| {
                    let p = booking
                        .passengers
                        .iter()
                        .find(|p| p.passenger_id == passenger_id);
                    json!({ "booking_id": id, "passenger": p.map(passenger_view) })
                },
            )
            .await
    }
}

/// The decision that cancels the command's booking: held seats are
/// released, sold seats returned, on every flight, and the refund the
/// policy allows is recorded on the booking for the saga to pay out.
pub fn cancellation(reason: String, by: CancelledBy, now: DateTime<Utc>) -> OnFlights {
    Arc::new(move |booking, flights| {
        let id = booking
            .id()
            .ok_or_else(|| CommandError::not_found("booking"))?;
        let command = CancelBooking {
            reason: reason.clone(),
            by,
            now,
        };
        let (events, seat_events) =
            cancel_booking(booking, flights, command).map_err(cancel_error)?;
        let refund = events.iter().find_map(|e| match e {
            BookingEvent::BookingCancelled(c) => Some(c.refund),
            _ => None,
        });
        let reply = json!({ "booking_id": id, "status": "CANCELLED", "refund": refund });
        Ok((events, seat_events, reply))
    })
}

/// The lane decision that moves one passenger of the command's booking to
/// `seat`, replying with the booking as it then stands.
/// The decision that moves one passenger of the command's booking to `seat`
/// on the one flight it is given (any flight of an itinerary), replying
/// with the booking as it then stands.
pub fn seat_change(passenger_id: Uuid, seat: Seat, now: DateTime<Utc>) -> OnFlights {
    Arc::new(move |booking, flights| {
        let [(flight, seats)] = flights else {
            return Err(CommandError::Internal(
                "a seat changes on one flight".into(),
            ));
        };
        let command = ChangeSeat {
            passenger_id,
            seat,
            now,
        };
        let (events, seat_events) =
            change_seat(booking, flight, seats, command).map_err(change_seat_error)?;
        let after = events.iter().fold(booking.clone(), |b, e| b.evolve(e));
        Ok((events, vec![seat_events], summary(&after)))
    })
}

/// Who cancels, as the booking records it.
fn cancelled_by(caller: &Caller) -> CancelledBy {
    match caller.role {
        Role::Admin => CancelledBy::Admin,
        Role::Agent => CancelledBy::Agent,
        _ => CancelledBy::Customer,
    }
}

fn cancel_error(e: CancelBookingError) -> CommandError {
    match e {
        CancelBookingError::FlightNotFound => CommandError::not_found("flight"),
        CancelBookingError::Booking(e) => booking_error(e),
        CancelBookingError::Seats(e) => seat_error(e),
    }
}

/// The booking, if the caller may act on it: its customer, an agent, an admin.
pub fn owned_by<'a>(booking: &'a Booking, caller: &Caller) -> CommandResult<&'a BookingInfo> {
    let info = booking
        .info
        .as_ref()
        .ok_or_else(|| CommandError::not_found("booking"))?;
    match caller.role {
        Role::Agent | Role::Admin => Ok(info),
        _ if info.customer_id == caller.user_id => Ok(info),
        // Not a 404: the id is a UUID nobody guesses, and 403 tells the
        // caller plainly that this booking is not theirs.
        _ => Err(CommandError::Forbidden(
            "this booking belongs to someone else".into(),
        )),
    }
}

fn passenger_view(p: &Passenger) -> Value {
    let known = p.personal.known();
    json!({
        "passenger_id": p.passenger_id,
        "type": p.kind,
        "seat": p.seat.map(|s| s.to_string()),
        "travels_with": p.travels_with,
        "cabin": p.cabin,
        // What they pay for every flight of the booking.
        "fare": p.fares().unwrap_or(p.fare),
        "first_name": known.map(|d| d.first_name.clone()),
        "last_name": known.map(|d| d.last_name.clone()),
    })
}

/// The reply to a new booking.
fn summary(b: &Booking) -> Value {
    let Some(info) = &b.info else {
        return Value::Null;
    };
    json!({
        "booking_id": info.booking_id,
        "pnr": info.pnr,
        "status": b.status.map(|s| s.as_str()),
        "flight_id": info.flight_id,
        "customer_id": info.customer_id,
        "hold_expires_at": info.hold_expires_at,
        "seats": b.seats().iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        "segments": b.flight_ids().into_iter().map(|f| json!({
            "flight_id": f,
            "seats": b.seats_on(f).iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "total": info.total,
        "discount": info.discount.as_ref().map_or(Money::zero(info.total.currency()), |d| d.amount),
        "discount_code": info.discount.as_ref().map(|d| d.code.clone()),
        "passengers": b.passengers.iter().map(passenger_view).collect::<Vec<_>>(),
        "pending_move": b.pending_move.as_ref().map(|m| json!({
            "to_flight_id": m.to_flight_id,
            "difference": m.difference,
            "payment_id": m.payment_id,
            "hold_expires_at": m.hold_expires_at,
        })),
    })
}
