//! Moving a booking to another flight of the same route: one decision over
//! the booking and both flights' seats. Every seated passenger gets a seat
//! in the same cabin on the new flight, the old seats go back on sale, and
//! the booking is re-priced at the new flight's fares, all in one append:
//! a move never leaves a passenger with two seats or none.
//!
//! - A held booking keeps its hold (same expiry) on the new flight and will
//!   be charged the new total when paid.
//! - A paid booking's seats are sold on the new flight at once; a cheaper
//!   flight's difference is owed back, and the fulfilment saga refunds it
//!   as it does a cancelled passenger's share. Tickets of a ticketed
//!   booking are void: the booking is confirmed again and the saga issues
//!   new ones for the new flight.
//! - A paid booking moving to a dearer flight first only holds the new
//!   seats ([`BookingMoveHeld`]) and keeps its old ones: the saga charges
//!   the difference as a payment of its own, then [`complete_move`] sells
//!   the new seats and returns the old ones in one append, or
//!   [`abandon_move`] lets the held seats go (refunding the difference if
//!   it was captured). The customer never flies a flight they did not pay
//!   for, nor loses their seats to a declined card.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::{
    Booking, BookingError, BookingEvent, BookingMoveAbandoned, BookingMoveHeld, BookingMoved,
    BookingStatus, MovedPassenger, PassengerType,
};
use crate::event::Aggregate;
use crate::flight::Flight;
use crate::pricing::{quote, PricingError};
use crate::seats::{SeatCommand, SeatError, SeatEvent, SeatInventory, SeatRequest};
use crate::values::{Cabin, Money, MoneyError, Seat};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoveBooking {
    pub from_flight_id: Uuid,
    pub to_flight_id: Uuid,
    /// The payment that charges the difference, should a paid booking move
    /// to a dearer flight.
    pub supplement_id: Uuid,
    pub now: DateTime<Utc>,
}

/// How long a paid booking's move to a dearer flight holds the new seats
/// while the difference is charged.
pub const MOVE_HOLD: Duration = Duration::minutes(15);

/// What a move decided, for each stream it writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Moved {
    pub booking: Vec<BookingEvent>,
    /// The old flight's seats: released or returned.
    pub from_seats: Vec<SeatEvent>,
    /// The new flight's seats: held, and sold at once for a paid booking
    /// (unless the move waits for a difference to be paid).
    pub to_seats: Vec<SeatEvent>,
    /// The difference to charge before the move completes: a paid booking
    /// moving to a dearer flight (then the booking's event is
    /// [`BookingMoveHeld`] and the old seats are untouched).
    pub charge: Option<Money>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoveBookingError {
    #[error("the booking is not on flight {0}")]
    NotOnFlight(Uuid),
    #[error("the booking is on that flight already")]
    SameFlight,
    #[error("flight does not exist")]
    FlightNotFound,
    #[error("the new flight flies another route")]
    OtherRoute,
    #[error("the new flight sells in another currency")]
    OtherCurrency,
    #[error("flight is cancelled")]
    FlightCancelled,
    #[error("flight has departed")]
    FlightDeparted,
    #[error(transparent)]
    Booking(#[from] BookingError),
    #[error(transparent)]
    Seats(#[from] SeatError),
    #[error(transparent)]
    Pricing(#[from] PricingError),
}

impl From<MoneyError> for MoveBookingError {
    fn from(e: MoneyError) -> Self {
        MoveBookingError::Booking(BookingError::Money(e))
    }
}

impl MoveBookingError {
    pub fn field(&self) -> Option<&'static str> {
        match self {
            MoveBookingError::NotOnFlight(_) => Some("from_flight_id"),
            MoveBookingError::SameFlight
            | MoveBookingError::OtherRoute
            | MoveBookingError::OtherCurrency => Some("to_flight_id"),
            _ => None,
        }
    }
}

/// The events that move `booking` from `from` (with its seats `from_seats`)
/// to `to` (`to_seats`). Seats that came back to a cabin whose waiting
/// list they would serve are the line's, as for a new booking.
pub fn move_booking(
    booking: &Booking,
    (from, from_seats): (&Flight, &SeatInventory),
    (to, to_seats): (&Flight, &SeatInventory),
    cmd: MoveBooking,
) -> Result<Moved, MoveBookingError> {
    let (info, status) = booking.created()?;
    booking.not_moving()?;
    booking.one_flight("move to another flight")?;
    if info.flight_id != cmd.from_flight_id || from.id() != Some(cmd.from_flight_id) {
        return Err(MoveBookingError::NotOnFlight(cmd.from_flight_id));
    }
    if cmd.to_flight_id == cmd.from_flight_id {
        return Err(MoveBookingError::SameFlight);
    }
    let paid = match status {
        BookingStatus::Held if cmd.now >= info.hold_expires_at => {
            return Err(BookingError::HoldExpired(info.hold_expires_at).into())
        }
        BookingStatus::Held => false,
        BookingStatus::Confirmed | BookingStatus::Ticketed => true,
        status => {
            return Err(BookingError::InvalidState {
                status,
                action: "move",
            }
            .into())
        }
    };
    if to.id() != Some(cmd.to_flight_id) || to_seats.flight_id() != Some(cmd.to_flight_id) {
        return Err(MoveBookingError::FlightNotFound);
    }
    if from_seats.flight_id() != Some(cmd.from_flight_id) {
        return Err(MoveBookingError::FlightNotFound);
    }
    if from.route().is_none() || from.route() != to.route() {
        return Err(MoveBookingError::OtherRoute);
    }
    if from.currency() != to.currency() {
        return Err(MoveBookingError::OtherCurrency);
    }
    if from.is_cancelled() || to.is_cancelled() {
        return Err(MoveBookingError::FlightCancelled);
    }
    if from.has_departed(cmd.now) || to.has_departed(cmd.now) {
        return Err(MoveBookingError::FlightDeparted);
    }

    // Each seated passenger asks for their cabin; an infant follows their
    // adult's.
    let seated: Vec<(Uuid, Cabin)> = booking
        .passengers
        .iter()
        .filter(|p| p.seat.is_some())
        .map(|p| (p.passenger_id, p.cabin))
        .collect();
    for (_, cabin) in &seated {
        if to_seats.line_first(*cabin, cmd.now) {
            return Err(SeatError::LineFirst { cabin: *cabin }.into());
        }
    }
    // What the travelling passengers accounted for, and what they will: the
    // discount they had keeps coming off.
    let priced = quote(
        to,
        &booking
            .passengers
            .iter()
            .map(|p| (p.cabin, p.kind))
            .collect::<Vec<_>>(),
    )?;
    let currency = info.total.currency();
    let old_value = booking
        .value_left()
        .ok_or(BookingError::Money(MoneyError::Overflow))?;
    let old_fares = Money::sum(currency, booking.passengers.iter().map(|p| &p.fare))?;
    let discount = old_fares.saturating_sub(&old_value)?;
    let new_value = priced.total.saturating_sub(&discount)?;
    let dearer = new_value.compare(&old_value)?.is_gt();
    // A paid booking moving to a dearer flight holds the new seats while
    // the difference is charged; otherwise a paid booking's seats are sold
    // as soon as they are held (the hold only has to outlive this
    // decision), and a held booking keeps its hold's expiry.
    let (expires_at, sell) = match (paid, dearer) {
        (true, true) => (cmd.now + MOVE_HOLD, false),
        (true, false) => (cmd.now + Duration::minutes(1), true),
        (false, _) => (info.hold_expires_at, false),
    };
    let mut to_events = to_seats.decide(SeatCommand::Hold {
        booking_id: info.booking_id,
        requests: seated.iter().map(|(_, c)| SeatRequest::Cabin(*c)).collect(),
        expires_at,
        now: cmd.now,
    })?;
    let held: Vec<Seat> = to_events
        .iter()
        .find_map(|e| match e {
            SeatEvent::SeatsHeld(h) if h.booking_id == info.booking_id => Some(h.seats.clone()),
            _ => None,
        })
        .unwrap_or_default();
    if held.len() != seated.len() {
        return Err(SeatError::NothingRequested.into());
    }
    if sell {
        let after = to_events.iter().fold(to_seats.clone(), |s, e| s.evolve(e));
        to_events.extend(after.decide(SeatCommand::Confirm {
            booking_id: info.booking_id,
            now: cmd.now,
        })?);
    }
    let mut seats = seated.iter().map(|(id, _)| *id).zip(held);
    let passengers: Vec<MovedPassenger> = booking
        .passengers
        .iter()
        .zip(priced.fares)
        .map(|(p, fare)| MovedPassenger {
            passenger_id: p.passenger_id,
            seat: match p.kind {
                PassengerType::Infant => None,
                _ => seats.next().map(|(_, s)| s),
            },
            fare,
        })
        .collect();

    if paid && dearer {
        let difference = new_value.checked_sub(&old_value)?;
        return Ok(Moved {
            booking: vec![BookingEvent::BookingMoveHeld(BookingMoveHeld {
                booking_id: info.booking_id,
                from_flight_id: cmd.from_flight_id,
                to_flight_id: cmd.to_flight_id,
                passengers,
                total: info.total.checked_add(&difference)?,
                difference,
                payment_id: cmd.supplement_id,
                hold_expires_at: expires_at,
                held_at: cmd.now,
            })],
            // The old seats stay the booking's until the difference is in.
            from_seats: vec![],
            to_seats: to_events,
            charge: Some(difference),
        });
    }
    let from_events = from_seats.decide(if paid {
        SeatCommand::Return {
            booking_id: info.booking_id,
            reason: format!("moved to flight {}", cmd.to_flight_id),
        }
    } else {
        SeatCommand::Release {
            booking_id: info.booking_id,
            reason: format!("moved to flight {}", cmd.to_flight_id),
        }
    })?;
    let (total, refund) = if dearer {
        // A held booking will simply be charged the new total.
        let difference = new_value.checked_sub(&old_value)?;
        (info.total.checked_add(&difference)?, Money::zero(currency))
    } else {
        let difference = old_value.checked_sub(&new_value)?;
        let total = info.total.checked_sub(&difference)?;
        // A held booking has paid nothing: it will simply be charged less.
        let refund = if paid {
            difference
        } else {
            Money::zero(currency)
        };
        (total, refund)
    };

    Ok(Moved {
        booking: vec![BookingEvent::BookingMoved(BookingMoved {
            booking_id: info.booking_id,
            from_flight_id: cmd.from_flight_id,
            to_flight_id: cmd.to_flight_id,
            passengers,
            total,
            refund,
            moved_at: cmd.now,
        })],
        from_seats: from_events,
        to_seats: to_events,
        charge: None,
    })
}

/// Completes a held move once its difference is captured: the booking
/// moves (nothing owed back), the new flight's held seats are sold and the
/// old flight's (`from_seats`) returned, in one append. Refused when the
/// new flight was cancelled or has departed, or the hold lapsed and its
/// seats went to others: the move is then abandoned instead.
pub fn complete_move(
    booking: &Booking,
    from_seats: &SeatInventory,
    (to, to_seats): (&Flight, &SeatInventory),
    now: DateTime<Utc>,
) -> Result<Moved, MoveBookingError> {
    let (info, status) = booking.created()?;
    let held = booking
        .pending_move
        .as_ref()
        .ok_or(BookingError::NoPendingMove)?;
    if !matches!(status, BookingStatus::Confirmed | BookingStatus::Ticketed) {
        return Err(BookingError::InvalidState {
            status,
            action: "complete a move",
        }
        .into());
    }
    if to.id() != Some(held.to_flight_id)
        || to_seats.flight_id() != Some(held.to_flight_id)
        || from_seats.flight_id() != Some(held.from_flight_id)
    {
        return Err(MoveBookingError::FlightNotFound);
    }
    if to.is_cancelled() {
        return Err(MoveBookingError::FlightCancelled);
    }
    if to.has_departed(now) {
        return Err(MoveBookingError::FlightDeparted);
    }
    let to_events = to_seats.decide(SeatCommand::Confirm {
        booking_id: info.booking_id,
        now,
    })?;
    let from_events = from_seats.decide(SeatCommand::Return {
        booking_id: info.booking_id,
        reason: format!("moved to flight {}", held.to_flight_id),
    })?;
    Ok(Moved {
        booking: vec![BookingEvent::BookingMoved(BookingMoved {
            booking_id: info.booking_id,
            from_flight_id: held.from_flight_id,
            to_flight_id: held.to_flight_id,
            passengers: held.passengers.clone(),
            total: held.total,
            refund: Money::zero(info.total.currency()),
            moved_at: now,
        })],
        from_seats: from_events,
        to_seats: to_events,
        charge: None,
    })
}

/// Abandons a held move: the booking stays on its flight, the seats still
/// held for it on the new flight (`to_seats`) go back, and the difference
/// is owed back if it was `captured`.
pub fn abandon_move(
    booking: &Booking,
    to_seats: &SeatInventory,
    captured: bool,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(Vec<BookingEvent>, Vec<SeatEvent>), MoveBookingError> {
    let (info, _) = booking.created()?;
    let held = booking
        .pending_move
        .as_ref()
        .ok_or(BookingError::NoPendingMove)?;
    if to_seats.flight_id() != Some(held.to_flight_id) {
        return Err(MoveBookingError::FlightNotFound);
    }
    let seat_events = match to_seats.decide(SeatCommand::Release {
        booking_id: info.booking_id,
        reason: format!("move abandoned: {reason}"),
    }) {
        Ok(events) => events,
        // The hold lapsed and its seats went to someone else.
        Err(SeatError::NothingHeld(_)) => vec![],
        Err(e) => return Err(e.into()),
    };
    let refund = if captured {
        held.difference
    } else {
        Money::zero(held.difference.currency())
    };
    Ok((
        vec![BookingEvent::BookingMoveAbandoned(BookingMoveAbandoned {
            booking_id: info.booking_id,
            to_flight_id: held.to_flight_id,
            payment_id: held.payment_id,
            reason: crate::values::plain_text(reason, super::MAX_REASON_LEN)
                .unwrap_or_else(|_| "move abandoned".to_owned()),
            refund,
            abandoned_at: now,
        })],
        seat_events,
    ))
}
