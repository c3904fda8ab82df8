//! The booking's decisions (`decide`) and how its events fold into its
//! state (`evolve`).

use std::collections::BTreeSet;

use super::*;
use crate::values::Personal;

use BookingStatus as S;

/// What `command` does to `booking`: the events, or why not.
pub(super) fn decide(
    booking: &Booking,
    command: BookingCommand,
) -> Result<Vec<BookingEvent>, BookingError> {
    match command {
        BookingCommand::Create {
            booking_id,
            pnr,
            flight_id,
            customer_id,
            created_by,
            passengers,
            connections,
            total,
            discount,
            hold_expires_at,
            now,
        } => {
            if booking.info.is_some() {
                return Err(BookingError::AlreadyCreated);
            }
            if passengers.is_empty() || passengers.len() > MAX_PASSENGERS {
                return Err(BookingError::PassengerCount);
            }
            if hold_expires_at <= now {
                return Err(BookingError::HoldExpiryNotInFuture);
            }
            check_party(&passengers)?;
            let mut ids = BTreeSet::new();
            let mut seats = BTreeSet::new();
            let mut booked = Vec::with_capacity(passengers.len());
            let mut personal = Vec::with_capacity(passengers.len());
            for p in passengers {
                if !ids.insert(p.passenger_id) {
                    return Err(BookingError::DuplicatePassenger(p.passenger_id));
                }
                if let Some(seat) = p.seat {
                    if !seats.insert(seat) {
                        return Err(BookingError::DuplicateSeat(seat));
                    }
                }
                personal.push(PassengerPersonal {
                    passenger_id: p.passenger_id,
                    details: validate_details(p.details, now.date_naive())?,
                });
                booked.push(BookedPassenger {
                    passenger_id: p.passenger_id,
                    kind: p.kind,
                    seat: p.seat,
                    travels_with: p.travels_with,
                    cabin: p.cabin,
                    fare: p.fare,
                });
            }
            check_connections(flight_id, &booked, &connections)?;
            let fares = Money::sum(
                total.currency(),
                booked.iter().map(|p| &p.fare).chain(
                    connections
                        .iter()
                        .flat_map(|c| c.passengers.iter().map(|p| &p.fare)),
                ),
            )?;
            let off = match &discount {
                Some(d) if d.amount.currency() != total.currency() => {
                    return Err(BookingError::DiscountCurrency)
                }
                Some(d) => d.amount,
                None => Money::zero(total.currency()),
            };
            if fares.saturating_sub(&off)? != total || off.compare(&fares)?.is_ge() {
                return Err(BookingError::TotalMismatch { total, fares });
            }
            Ok(vec![BookingEvent::BookingCreated(BookingCreated {
                booking_id,
                subject: customer_id,
                pnr,
                flight_id,
                customer_id,
                created_by,
                passengers: booked,
                total,
                discount,
                hold_expires_at,
                created_at: now,
                personal: Personal::Known(personal),
                connections,
            })])
        }
        BookingCommand::SubmitPayment { payment_id, now } => {
            let info = booking.expect(&[S::Held], "submit payment")?;
            if now >= info.hold_expires_at {
                return Err(BookingError::HoldExpired(info.hold_expires_at));
            }
            Ok(vec![BookingEvent::PaymentSubmitted(PaymentSubmitted {
                booking_id: info.booking_id,
                payment_id,
                amount: booking.amount_due().unwrap_or(info.total),
                submitted_at: now,
            })])
        }
        BookingCommand::Confirm { now } => {
            let info = booking.expect(&[S::PaymentPending], "confirm")?;
            Ok(vec![BookingEvent::BookingConfirmed(BookingConfirmed {
                booking_id: info.booking_id,
                confirmed_at: now,
            })])
        }
        BookingCommand::MarkPaymentFailed { reason } => {
            let info = booking.expect(&[S::PaymentPending], "mark payment failed")?;
            Ok(vec![BookingEvent::BookingPaymentFailed(
                BookingPaymentFailed {
                    booking_id: info.booking_id,
                    reason: non_empty(reason)?,
                },
            )])
        }
        BookingCommand::Expire { now } => {
            let info = booking.expect(&[S::Held, S::PaymentPending], "expire")?;
            if now < info.hold_expires_at {
                return Err(BookingError::HoldNotExpired(info.hold_expires_at));
            }
            Ok(vec![BookingEvent::BookingExpired(BookingExpired {
                booking_id: info.booking_id,
                expired_at: now,
            })])
        }
        BookingCommand::IssueTickets { tickets, now } => {
            let info = booking.expect(&[S::Confirmed], "issue tickets")?;
            let flights = booking.flight_ids();
            let wanted: BTreeSet<(Uuid, Uuid)> = flights
                .iter()
                .flat_map(|f| booking.passengers.iter().map(|p| (p.passenger_id, *f)))
                .collect();
            let given: BTreeSet<(Uuid, Uuid)> = tickets
                .iter()
                .map(|t| (t.passenger_id, t.flight_id.unwrap_or(info.flight_id)))
                .collect();
            let numbers: BTreeSet<&TicketNumber> =
                tickets.iter().map(|t| &t.ticket_number).collect();
            if tickets.len() != wanted.len() || given != wanted || numbers.len() != tickets.len() {
                return Err(BookingError::TicketsMismatch);
            }
            // A booking of one flight records its tickets as it always did;
            // an itinerary's name their flight.
            let itinerary = booking.is_itinerary();
            Ok(vec![BookingEvent::TicketsIssued(TicketsIssued {
                booking_id: info.booking_id,
                tickets: tickets
                    .into_iter()
                    .map(|t| IssuedTicket {
                        flight_id: itinerary.then(|| t.flight_id.unwrap_or(info.flight_id)),
                        ..t
                    })
                    .collect(),
                issued_at: now,
            })])
        }
        BookingCommand::Fail { reason } => {
            let info = booking.expect(&[S::Held, S::PaymentPending, S::Confirmed], "fail")?;
            Ok(vec![BookingEvent::BookingFailed(BookingFailed {
                booking_id: info.booking_id,
                reason: non_empty(reason)?,
            })])
        }
        BookingCommand::Cancel {
            reason,
            now,
            departs_at,
            by,
        } => {
            let (info, status) = booking.created()?;
            if status == S::Cancelled {
                return Err(BookingError::AlreadyCancelled);
            }
            // A flight cancellation too waits for the move to settle (its
            // saga tries again): the move may take the booking off the flight.
            booking.not_moving()?;
            // While payment is in flight only the flight's cancellation
            // may cut in: the saga refunds whatever gets captured.
            let allowed: &[BookingStatus] = match by {
                CancelledBy::FlightCancelled => {
                    &[S::Held, S::PaymentPending, S::Confirmed, S::Ticketed]
                }
                _ => &[S::Held, S::Confirmed, S::Ticketed],
            };
            let info = if allowed.contains(&status) {
                info
            } else {
                return Err(BookingError::InvalidState {
                    status,
                    action: "cancel",
                });
            };
            let reason = non_empty(reason)?;
            // Passengers taken off earlier were refunded their share then.
            let paid = booking.value_left().unwrap_or(info.total);
            let refund = match (by, status) {
                (CancelledBy::FlightCancelled, S::Held) => Money::zero(info.total.currency()),
                (CancelledBy::FlightCancelled, _) => paid,
                (_, S::Held) => {
                    if now >= departs_at {
                        return Err(BookingError::Departed);
                    }
                    Money::zero(info.total.currency())
                }
                _ => refund_policy(paid, departs_at, now).map_err(policy_error)?,
            };
            Ok(vec![BookingEvent::BookingCancelled(BookingCancelled {
                booking_id: info.booking_id,
                reason,
                refund,
                cancelled_by: by,
                previous_status: status,
                cancelled_at: now,
            })])
        }
        BookingCommand::CancelPassenger {
            passenger_id,
            reason,
            now,
            departs_at,
            by,
        } => {
            let (info, status) = booking.created()?;
            booking.not_moving()?;
            if !matches!(status, S::Held | S::Confirmed | S::Ticketed) {
                return Err(BookingError::InvalidState {
                    status,
                    action: "cancel a passenger",
                });
            }
            let passenger = booking
                .passengers
                .iter()
                .find(|p| p.passenger_id == passenger_id)
                .ok_or(BookingError::UnknownPassenger(passenger_id))?;
            if booking.passengers.len() == 1 {
                return Err(BookingError::LastPassenger(passenger_id));
            }
            if booking
                .passengers
                .iter()
                .any(|p| p.travels_with == Some(passenger_id))
            {
                return Err(BookingError::InfantOnLap(passenger_id));
            }
            if now >= departs_at {
                return Err(BookingError::Departed);
            }
            let reason = non_empty(reason)?;
            let share = booking
                .share_of(passenger.fares()?)
                .ok_or(BookingError::Money(crate::values::MoneyError::Overflow))?;
            let refund = match status {
                S::Held => Money::zero(info.total.currency()),
                _ => refund_policy(share, departs_at, now).map_err(policy_error)?,
            };
            Ok(vec![BookingEvent::PassengerCancelled(PassengerCancelled {
                booking_id: info.booking_id,
                passenger_id,
                share,
                refund,
                reason,
                cancelled_by: by,
                booking_status: status,
                cancelled_at: now,
            })])
        }
        BookingCommand::UpdatePassenger {
            passenger_id,
            details,
            now,
        } => {
            let info = booking.expect(
                &[S::Held, S::PaymentPending, S::Confirmed],
                "update a passenger",
            )?;
            let passenger = booking
                .passengers
                .iter()
                .find(|p| p.passenger_id == passenger_id)
                .ok_or(BookingError::UnknownPassenger(passenger_id))?;
            let details = validate_details(details, now.date_naive())?;
            if passenger.personal.known() == Some(&details) {
                return Ok(vec![]);
            }
            Ok(vec![BookingEvent::PassengerUpdated(PassengerUpdated {
                booking_id: info.booking_id,
                passenger_id,
                subject: info.customer_id,
                personal: Personal::Known(details),
                updated_at: now,
            })])
        }
        BookingCommand::ChangeSeat {
            passenger_id,
            flight_id,
            seat,
            now,
        } => {
            let (_, status) = booking.created()?;
            booking.not_moving()?;
            if !booking.flight_ids().contains(&flight_id) {
                return Err(BookingError::NotOnFlight(flight_id));
            }
            let info = booking.expect(
                &[S::Held, S::PaymentPending, S::Confirmed, S::Ticketed],
                "change a seat",
            )?;
            // An unpaid booking's seats last as long as its hold.
            if matches!(status, S::Held | S::PaymentPending) && now >= info.hold_expires_at {
                return Err(BookingError::HoldExpired(info.hold_expires_at));
            }
            let passenger = booking
                .passengers
                .iter()
                .find(|p| p.passenger_id == passenger_id)
                .ok_or(BookingError::UnknownPassenger(passenger_id))?;
            let Some(from) = passenger.seat_on(flight_id, info.flight_id) else {
                return Err(BookingError::NoSeatToChange(passenger_id));
            };
            if from == seat {
                return Ok(vec![]);
            }
            // Not checked against the other passengers' seats: the seat
            // inventory refuses a seat the booking holds already.
            Ok(vec![BookingEvent::PassengerSeatChanged(
                PassengerSeatChanged {
                    booking_id: info.booking_id,
                    passenger_id,
                    flight_id: booking.is_itinerary().then_some(flight_id),
                    from,
                    to: seat,
                    changed_at: now,
                },
            )])
        }
    }
}

/// An itinerary's further flights: each named once (and not the first),
/// each with every passenger of the booking in the same order, seated as on the first flight
/// (an infant on no seat, everyone else on their own).
fn check_connections(
    first: Uuid,
    passengers: &[BookedPassenger],
    connections: &[BookedSegment],
) -> Result<(), BookingError> {
    if connections.len() + 1 > MAX_FLIGHTS {
        return Err(BookingError::FlightCount);
    }
    let mut flights = BTreeSet::from([first]);
    for segment in connections {
        if !flights.insert(segment.flight_id) {
            return Err(BookingError::FlightTwice(segment.flight_id));
        }
        let mismatch = BookingError::SegmentMismatch(segment.flight_id);
        if segment.passengers.len() != passengers.len() {
            return Err(mismatch);
        }
        let mut seats = BTreeSet::new();
        for (p, on) in passengers.iter().zip(&segment.passengers) {
            if p.passenger_id != on.passenger_id || p.seat.is_some() != on.seat.is_some() {
                return Err(mismatch);
            }
            if let Some(seat) = on.seat {
                if !seats.insert(seat) {
                    return Err(BookingError::DuplicateSeat(seat));
                }
            }
        }
    }
    Ok(())
}

/// Seats and laps: everyone but an infant has a seat; an infant has none
/// and travels with an adult of the booking, at most one per adult.
fn check_party(passengers: &[NewPassenger]) -> Result<(), BookingError> {
    let party: Vec<PartyMember> = passengers
        .iter()
        .map(|p| PartyMember {
            passenger_id: p.passenger_id,
            kind: p.kind,
            seated: p.seat.is_some(),
            travels_with: p.travels_with,
        })
        .collect();
    check_party_of(&party)
}

/// One passenger as far as seats and laps go.
pub(super) struct PartyMember {
    pub passenger_id: Uuid,
    pub kind: PassengerType,
    pub seated: bool,
    pub travels_with: Option<Uuid>,
}

pub(super) fn check_party_of(party: &[PartyMember]) -> Result<(), BookingError> {
    let mut laps = BTreeSet::new();
    for p in party {
        match (p.kind, p.seated, p.travels_with) {
            (PassengerType::Infant, false, Some(adult)) => {
                let is_adult = party
                    .iter()
                    .any(|a| a.passenger_id == adult && a.kind == PassengerType::Adult);
                if !is_adult {
                    return Err(BookingError::InfantWithoutAdult(p.passenger_id));
                }
                if !laps.insert(adult) {
                    return Err(BookingError::SecondInfant(adult));
                }
            }
            (PassengerType::Infant, _, _) => {
                return Err(BookingError::InfantWithoutAdult(p.passenger_id))
            }
            (_, true, None) => {}
            (_, _, _) => return Err(BookingError::SeatRequired(p.passenger_id)),
        }
    }
    Ok(())
}

/// The refunds decided so far, plus `more`.
fn add_refund(so_far: Option<Money>, more: Money) -> Money {
    match so_far {
        Some(r) => r.checked_add(&more).unwrap_or(r),
        None => more,
    }
}

fn policy_error(e: RefundError) -> BookingError {
    match e {
        RefundError::AfterDeparture => BookingError::Departed,
        RefundError::Money(m) => BookingError::Money(m),
    }
}

/// `booking` after `event`.
pub(super) fn evolve(mut booking: Booking, event: &BookingEvent) -> Booking {
    match event {
        BookingEvent::BookingCreated(e) => {
            booking.info = Some(BookingInfo {
                booking_id: e.booking_id,
                pnr: e.pnr.clone(),
                flight_id: e.flight_id,
                customer_id: e.customer_id,
                created_by: e.created_by,
                total: e.total,
                discount: e.discount.clone(),
                hold_expires_at: e.hold_expires_at,
                created_at: e.created_at,
                connections: e.connections.iter().map(|c| c.flight_id).collect(),
            });
            booking.status = Some(S::Held);
            let details = e.personal.known();
            booking.passengers = e
                .passengers
                .iter()
                .map(|p| Passenger {
                    passenger_id: p.passenger_id,
                    kind: p.kind,
                    seat: p.seat,
                    travels_with: p.travels_with,
                    cabin: p.cabin,
                    fare: p.fare,
                    personal: details
                        .and_then(|all| all.iter().find(|d| d.passenger_id == p.passenger_id))
                        .map_or(Personal::Erased, |d| Personal::Known(d.details.clone())),
                    ticket_number: None,
                    legs: e
                        .connections
                        .iter()
                        .filter_map(|c| {
                            let on = c
                                .passengers
                                .iter()
                                .find(|x| x.passenger_id == p.passenger_id)?;
                            Some(Leg {
                                flight_id: c.flight_id,
                                seat: on.seat,
                                cabin: on.cabin,
                                fare: on.fare,
                                ticket_number: None,
                            })
                        })
                        .collect(),
                })
                .collect();
        }
        BookingEvent::PaymentSubmitted(e) => {
            booking.status = Some(S::PaymentPending);
            booking.payment_id = Some(e.payment_id);
        }
        BookingEvent::BookingConfirmed(_) => {
            booking.status = Some(S::Confirmed);
            if booking.paid_lines.is_none() {
                booking.paid_lines = booking.invoice_lines().ok();
            }
        }
        BookingEvent::BookingPaymentFailed(e) => {
            booking.status = Some(S::PaymentFailed);
            booking.reason = Some(e.reason.clone());
        }
        BookingEvent::BookingExpired(_) => booking.status = Some(S::Expired),
        BookingEvent::TicketsIssued(e) => {
            booking.status = Some(S::Ticketed);
            let first = booking.info.as_ref().map(|i| i.flight_id);
            for ticket in &e.tickets {
                let Some(p) = booking
                    .passengers
                    .iter_mut()
                    .find(|p| p.passenger_id == ticket.passenger_id)
                else {
                    continue;
                };
                let number = Some(ticket.ticket_number.clone());
                match ticket.flight_id {
                    None => p.ticket_number = number,
                    Some(f) if Some(f) == first => p.ticket_number = number,
                    Some(f) => {
                        if let Some(leg) = p.legs.iter_mut().find(|l| l.flight_id == f) {
                            leg.ticket_number = number;
                        }
                    }
                }
            }
        }
        BookingEvent::BookingFailed(e) => {
            booking.status = Some(S::Failed);
            booking.reason = Some(e.reason.clone());
        }
        BookingEvent::BookingCancelled(e) => {
            booking.status = Some(S::Cancelled);
            booking.refund = Some(add_refund(booking.refund, e.refund));
            booking.reason = Some(e.reason.clone());
        }
        BookingEvent::PassengerCancelled(e) => {
            if let Some(i) = booking
                .passengers
                .iter()
                .position(|p| p.passenger_id == e.passenger_id)
            {
                let passenger = booking.passengers.remove(i);
                booking.cancelled.push(CancelledPassenger {
                    passenger,
                    share: e.share,
                    paid: matches!(e.booking_status, S::Confirmed | S::Ticketed),
                });
            }
            booking.refund = Some(add_refund(booking.refund, e.refund));
        }
        BookingEvent::PassengerUpdated(e) => {
            if let Some(p) = booking
                .passengers
                .iter_mut()
                .find(|p| p.passenger_id == e.passenger_id)
            {
                p.personal = e.personal.clone();
            }
        }
        BookingEvent::PassengerSeatChanged(e) => {
            let first = booking.info.as_ref().map(|i| i.flight_id);
            if let Some(p) = booking
                .passengers
                .iter_mut()
                .find(|p| p.passenger_id == e.passenger_id)
            {
                match e.flight_id.filter(|f| Some(*f) != first) {
                    None => p.seat = Some(e.to),
                    Some(f) => {
                        if let Some(leg) = p.legs.iter_mut().find(|l| l.flight_id == f) {
                            leg.seat = Some(e.to);
                        }
                    }
                }
            }
        }
        BookingEvent::BookingMoved(e) => {
            if let Some(info) = booking.info.as_mut() {
                info.flight_id = e.to_flight_id;
                info.total = e.total;
            }
            for moved in &e.passengers {
                if let Some(p) = booking
                    .passengers
                    .iter_mut()
                    .find(|p| p.passenger_id == moved.passenger_id)
                {
                    p.seat = moved.seat;
                    p.fare = moved.fare;
                    p.ticket_number = None;
                }
            }
            // The old flight's tickets are void: new ones are issued.
            if booking.status == Some(S::Ticketed) {
                booking.status = Some(S::Confirmed);
            }
            if e.refund.is_positive() {
                booking.refund = Some(add_refund(booking.refund, e.refund));
            }
            booking.moves += 1;
            // The move a paid difference was waiting for.
            if let Some(held) = booking.pending_move.take() {
                for s in &mut booking.supplements {
                    if s.payment_id == held.payment_id {
                        s.moved = true;
                    }
                }
            }
        }
        BookingEvent::BookingMoveHeld(e) => {
            booking.supplements.push(Supplement {
                payment_id: e.payment_id,
                amount: e.difference,
                from_flight_id: e.from_flight_id,
                to_flight_id: e.to_flight_id,
                moved: false,
            });
            booking.pending_move = Some(e.clone());
        }
        BookingEvent::BookingMoveAbandoned(e) => {
            booking.pending_move = None;
            if e.refund.is_positive() {
                booking.refund = Some(add_refund(booking.refund, e.refund));
            }
        }
    }
    booking
}
