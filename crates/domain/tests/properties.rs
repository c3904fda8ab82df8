//! Invariants over arbitrary command sequences.
mod common;

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use common::*;
use domain::booking::{Booking, BookingCommand, BookingStatus, CancelledBy};
use domain::flight::{Flight, FlightCommand};
use domain::payment::{Payment, PaymentCommand, PaymentEvent};
use domain::seats::{SeatCommand, SeatEvent, SeatInventory, SeatRequest, SeatState};
use domain::user::{User, UserCommand};
use domain::values::{Cabin, Email, Money, Role, Seat, TicketNumber};
use domain::Aggregate;
use proptest::prelude::*;
use uuid::Uuid;

/// Decides, folds the outcome in, and checks that deciding the very same
/// command again is refused or records nothing: retries are safe.
fn step<A: Aggregate>(state: A, command: A::Command) -> (A, Result<Vec<A::Event>, A::Error>)
where
    A::Command: Clone,
{
    let result = state.decide(command.clone());
    let next = match &result {
        Ok(events) => events.iter().fold(state.clone(), |s, e| s.evolve(e)),
        Err(_) => state,
    };
    if let Ok(events) = &result {
        if !events.is_empty() {
            if let Ok(again) = next.decide(command) {
                assert!(
                    again.is_empty(),
                    "a repeated command was accepted again: {again:?}"
                );
            }
        }
    }
    (next, result)
}

fn all_seats() -> Vec<Seat> {
    SeatInventory::fold([&inventory_opened()])
        .seats()
        .map(|(s, _)| s)
        .collect()
}

#[derive(Debug, Clone)]
enum SeatOp {
    Hold {
        booking: u128,
        requests: Vec<(bool, usize)>,
        ttl: i64,
    },
    Release(u128),
    Expire(u128),
    Confirm(u128),
    Return(u128),
    Change {
        booking: u128,
        from: usize,
        to: usize,
    },
    Wait(i64),
}

fn seat_op() -> impl Strategy<Value = SeatOp> {
    let booking = 0u128..4;
    prop_oneof![
        4 => (booking.clone(), prop::collection::vec((any::<bool>(), 0usize..10), 1..4), 1i64..20)
            .prop_map(|(booking, requests, ttl)| SeatOp::Hold { booking, requests, ttl }),
        1 => booking.clone().prop_map(SeatOp::Release),
        1 => booking.clone().prop_map(SeatOp::Expire),
        2 => booking.clone().prop_map(SeatOp::Confirm),
        1 => booking.clone().prop_map(SeatOp::Return),
        2 => (booking, 0usize..10, 0usize..10)
            .prop_map(|(booking, from, to)| SeatOp::Change { booking, from, to }),
        2 => (0i64..15).prop_map(SeatOp::Wait),
    ]
}

/// An independent model of who has each seat.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Owner {
    Held(Uuid, DateTime<Utc>),
    Sold(Uuid),
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_seat_is_never_held_or_sold_to_two_bookings_at_once(ops in prop::collection::vec(seat_op(), 1..40)) {
        let seats = all_seats();
        let mut inventory = SeatInventory::fold([&inventory_opened()]);
        let mut model: BTreeMap<Seat, Owner> = BTreeMap::new();
        let mut now = t0();
        for op in ops {
            let command = match op {
                SeatOp::Wait(m) => { now += Duration::minutes(m); continue; }
                SeatOp::Hold { booking, requests, ttl } => SeatCommand::Hold {
                    booking_id: id(booking),
                    requests: requests.into_iter().map(|(named, i)| if named {
                        SeatRequest::Seat(seats[i])
                    } else if i % 2 == 0 { SeatRequest::Cabin(Cabin::Economy) } else { SeatRequest::Cabin(Cabin::Business) }).collect(),
                    expires_at: now + Duration::minutes(ttl),
                    now,
                },
                SeatOp::Release(b) => SeatCommand::Release { booking_id: id(b), reason: "r".into() },
                SeatOp::Expire(b) => SeatCommand::Expire { booking_id: id(b), now },
                SeatOp::Confirm(b) => SeatCommand::Confirm { booking_id: id(b), now },
                SeatOp::Return(b) => SeatCommand::Return { booking_id: id(b), reason: "r".into() },
                SeatOp::Change { booking, from, to } => SeatCommand::Change { booking_id: id(booking), from: seats[from], to: seats[to], now },
            };
            let (next, result) = step(inventory, command);
            if let Ok(events) = &result {
                for event in events {
                    match event {
                        SeatEvent::SeatsHeld(h) => {
                            for seat in &h.seats {
                                match model.get(seat) {
                                    None => {}
                                    Some(Owner::Held(_, exp)) => prop_assert!(now >= *exp, "{seat} taken from a running hold"),
                                    Some(Owner::Sold(b)) => prop_assert!(false, "{seat} sold to {b} was held again"),
                                }
                                model.insert(*seat, Owner::Held(h.booking_id, h.expires_at));
                                prop_assert_eq!(next.status_at(*seat, now), Some(SeatState::Held { booking_id: h.booking_id, expires_at: h.expires_at }));
                            }
                        }
                        SeatEvent::SeatsConfirmed(c) => {
                            for seat in &c.seats {
                                prop_assert!(matches!(model.get(seat), Some(Owner::Held(b, exp)) if *b == c.booking_id && now < *exp));
                                model.insert(*seat, Owner::Sold(c.booking_id));
                            }
                        }
                        SeatEvent::SeatsReleased(domain::seats::SeatsReleased { booking_id, seats, .. })
                        | SeatEvent::HoldExpired(domain::seats::HoldExpired { booking_id, seats }) => {
                            for seat in seats {
                                prop_assert!(matches!(model.get(seat), Some(Owner::Held(b, _)) if b == booking_id));
                                model.remove(seat);
                            }
                        }
                        SeatEvent::SeatsReturned(r) => {
                            for seat in &r.seats {
                                prop_assert_eq!(model.get(seat), Some(&Owner::Sold(r.booking_id)));
                                model.remove(seat);
                            }
                        }
                        SeatEvent::SeatChanged(c) => {
                            let owner = model.get(&c.from).copied();
                            prop_assert!(matches!(owner, Some(Owner::Held(b, exp)) if b == c.booking_id && now < exp)
                                || owner == Some(Owner::Sold(c.booking_id)), "{} moved from a seat it did not have", c.booking_id);
                            prop_assert!(!model.contains_key(&c.to), "{} taken while someone had it", c.to);
                            model.remove(&c.from);
                            model.extend(owner.map(|o| (c.to, o)));
                        }
                        SeatEvent::InventoryOpened(_) => prop_assert!(false, "opened twice"),
                        // These operations never touch the line.
                        SeatEvent::WaitlistJoined(_)
                        | SeatEvent::WaitlistOffered(_)
                        | SeatEvent::WaitlistOfferAccepted(_)
                        | SeatEvent::WaitlistEntryLapsed(_)
                        | SeatEvent::WaitlistWithdrawn(_) => prop_assert!(false, "the line moved: {event:?}"),
                    }
                }
            }
            inventory = next;
            for seat in &seats {
                let recorded = inventory.seats().find(|(s, _)| s == seat).map(|(_, slot)| slot.state);
                let expected = match model.get(seat) {
                    None => SeatState::Available,
                    Some(Owner::Held(b, exp)) => SeatState::Held { booking_id: *b, expires_at: *exp },
                    Some(Owner::Sold(b)) => SeatState::Sold { booking_id: *b },
                };
                prop_assert_eq!(recorded, Some(expected));
            }
        }
    }
}

#[derive(Debug, Clone)]
enum PaymentOp {
    Capture,
    Decline,
    Refund(i64),
    Invoice,
}

fn payment_op() -> impl Strategy<Value = PaymentOp> {
    prop_oneof![
        2 => Just(PaymentOp::Capture),
        1 => Just(PaymentOp::Decline),
        5 => (0i64..60_000).prop_map(PaymentOp::Refund),
        1 => Just(PaymentOp::Invoice),
    ]
}

proptest! {
    #[test]
    fn refunds_never_exceed_captures(ops in prop::collection::vec(payment_op(), 1..30)) {
        let (mut payment, _) = step(Payment::default(), PaymentCommand::Request {
            payment_id: id(1), booking_id: id(2), amount: usd("420.00"), card_brand: "visa".into(), card_last4: "4242".into(), card_token: None, now: t0(),
        });
        let mut refunded_total = usd("0");
        for (n, op) in ops.into_iter().enumerate() {
            let command = match op {
                PaymentOp::Capture => PaymentCommand::Capture { gateway_reference: "g".into(), now: t0() },
                PaymentOp::Decline => PaymentCommand::Decline { code: "c".into(), reason: "r".into(), now: t0() },
                PaymentOp::Refund(cents) => PaymentCommand::Refund {
                    refund_id: id(100 + n as u128),
                    amount: Money::new(rust_decimal::Decimal::new(cents, 2), usd("0").currency()).unwrap(),
                    reason: "r".into(),
                    now: t0(),
                },
                PaymentOp::Invoice => PaymentCommand::IssueInvoice {
                    invoice_number: "I-1".into(),
                    tax_rate: rust_decimal::Decimal::new(1, 1),
                    lines: vec![domain::payment::InvoiceLineInput { description: "fare".into(), quantity: 1, unit_price: usd("420.00") , credit: false}],
                    now: t0(),
                },
            };
            let (next, result) = step(payment, command);
            for event in result.unwrap_or_default() {
                if let PaymentEvent::PaymentRefunded(r) = event {
                    refunded_total = refunded_total.checked_add(&r.amount).unwrap();
                }
            }
            payment = next;
            let captured = payment.captured.unwrap_or(usd("0"));
            prop_assert!(refunded_total.compare(&captured).unwrap().is_le());
            prop_assert_eq!(payment.refunded(), Some(refunded_total));
        }
    }
}

#[derive(Debug, Clone)]
enum BookingOp {
    Submit,
    Confirm,
    PaymentFailed,
    Expire,
    Tickets,
    Fail,
    Cancel(u8),
    Update(bool),
    Wait(i64),
}

fn booking_op() -> impl Strategy<Value = BookingOp> {
    prop_oneof![
        Just(BookingOp::Submit),
        Just(BookingOp::Confirm),
        Just(BookingOp::PaymentFailed),
        Just(BookingOp::Expire),
        Just(BookingOp::Tickets),
        Just(BookingOp::Fail),
        (0u8..4).prop_map(BookingOp::Cancel),
        any::<bool>().prop_map(BookingOp::Update),
        (0i64..8).prop_map(BookingOp::Wait),
    ]
}

proptest! {
    #[test]
    fn a_booking_folds_whatever_it_decided_and_never_accepts_a_retry_twice(ops in prop::collection::vec(booking_op(), 1..25)) {
        let mut booking = Booking::fold([&booking_created()]);
        let mut now = t0();
        for op in ops {
            let before = booking.status;
            let command = match op {
                BookingOp::Wait(m) => { now += Duration::minutes(m); continue; }
                BookingOp::Submit => BookingCommand::SubmitPayment { payment_id: id(9), now },
                BookingOp::Confirm => BookingCommand::Confirm { now },
                BookingOp::PaymentFailed => BookingCommand::MarkPaymentFailed { reason: "declined".into() },
                BookingOp::Expire => BookingCommand::Expire { now },
                BookingOp::Tickets => BookingCommand::IssueTickets {
                    tickets: vec![domain::booking::IssuedTicket::new(id(PASSENGER_1), TicketNumber::new(125, 1).unwrap()), domain::booking::IssuedTicket::new(id(PASSENGER_2), TicketNumber::new(125, 2).unwrap())],
                    now,
                },
                BookingOp::Fail => BookingCommand::Fail { reason: "x".into() },
                BookingOp::Cancel(by) => BookingCommand::Cancel {
                    reason: "x".into(), now, departs_at: departs(),
                    by: [CancelledBy::Customer, CancelledBy::Agent, CancelledBy::Admin, CancelledBy::FlightCancelled][by as usize],
                },
                BookingOp::Update(alt) => BookingCommand::UpdatePassenger { passenger_id: id(PASSENGER_1), details: if alt { alan() } else { ada() }, now },
            };
            let (next, result) = step(booking, command);
            if let Ok(events) = &result {
                if let Some(domain::booking::BookingEvent::BookingCancelled(c)) = events.first() {
                    let total = next.info.as_ref().unwrap().total;
                    prop_assert!(c.refund.compare(&total).unwrap().is_le());
                }
            }
            if before.is_some_and(|s| s.is_terminal()) {
                prop_assert_eq!(next.status, before, "a terminal booking moved");
            }
            prop_assert!(next.status != Some(BookingStatus::Ticketed) || next.passengers.iter().all(|p| p.ticket_number.is_some()));
            booking = next;
        }
    }

    #[test]
    fn a_flight_folds_whatever_it_decided(ops in prop::collection::vec((0u8..4, 0i64..300, 1i64..1000), 1..15)) {
        let mut flight = Flight::fold(&flight_events());
        for (kind, minutes_later, cents) in ops {
            let now = t0() + Duration::hours(minutes_later);
            let command = match kind {
                0 => FlightCommand::ChangeFare { cabin: Cabin::Economy, fare: Money::new(rust_decimal::Decimal::new(cents, 2), usd("0").currency()).unwrap(), now },
                1 => FlightCommand::Reschedule { departs_at: now + Duration::hours(cents), arrives_at: now + Duration::hours(cents + 8), now },
                2 => FlightCommand::Cancel { reason: "weather".into(), now },
                _ => FlightCommand::Schedule(schedule()),
            };
            let (next, result) = step(flight, command);
            if result.is_ok() {
                prop_assert_eq!(next.seat_map().len(), 10);
            }
            flight = next;
        }
    }

    #[test]
    fn a_user_folds_whatever_it_decided(ops in prop::collection::vec((0u8..4, 0usize..5), 1..15)) {
        let mut user = User::default();
        for (kind, n) in ops {
            let command = match kind {
                0 => UserCommand::Register { user_id: id(1), email: Email::parse("a@b.co").unwrap(), full_name: "A".into(), role: Role::ALL[n], now: t0() },
                1 => UserCommand::UpdateProfile { full_name: Some(format!("Name {n}")), phone: None, now: t0() },
                2 => UserCommand::ChangeRole { role: Role::ALL[n], now: t0() },
                _ => UserCommand::Erase { now: t0() },
            };
            user = step(user, command).0;
        }
    }
}
