//! The waiting list: joined when a cabin is sold out, served in order as
//! seats come back, an offer at a time, each seat to one entry only.

mod common;

use common::*;
use domain::booking::*;
use domain::flight::{Flight, FlightCommand};
use domain::seats::{
    SeatCommand, SeatError, SeatEvent, SeatInventory, SeatRequest, SeatsConfirmed, SeatsHeld,
    SeatsReturned,
};
use domain::testing::given;
use domain::values::{Cabin, Pnr};
use domain::waitlist::*;
use domain::Aggregate;
use uuid::Uuid;

const ENTRY_1: u128 = 501;
const ENTRY_2: u128 = 502;
const ENTRY_3: u128 = 503;
const OFFER: u128 = 600;

/// Economy (10A..11C) sold: 4 seats to booking A, 2 to booking B.
fn sold_out() -> Vec<SeatEvent> {
    let mut events = vec![inventory_opened()];
    for (booking, list) in [
        (BOOKING_A, &["10A", "10B", "10C", "11A"][..]),
        (BOOKING_B, &["11B", "11C"][..]),
    ] {
        events.push(SeatEvent::SeatsHeld(SeatsHeld {
            booking_id: id(booking),
            seats: seats(list),
            expires_at: t0() + minutes(10),
        }));
        events.push(SeatEvent::SeatsConfirmed(SeatsConfirmed {
            booking_id: id(booking),
            seats: seats(list),
        }));
    }
    events
}

fn party(entry: u128, adults: usize) -> Vec<WaitingPassenger> {
    (0..adults)
        .map(|i| WaitingPassenger {
            passenger_id: id(entry * 10 + i as u128),
            kind: PassengerType::Adult,
            travels_with: None,
        })
        .collect()
}

fn join(entry: u128, customer: u128, adults: usize) -> JoinWaitlist {
    JoinWaitlist {
        entry_id: id(entry),
        customer_id: id(customer),
        cabin: Cabin::Economy,
        passengers: party(entry, adults),
        details: vec![ada(); adults],
        now: t0(),
    }
}

fn joined(entry: u128, customer: u128, adults: usize) -> SeatEvent {
    let events = SeatInventory::fold(&sold_out())
        .decide(SeatCommand::JoinWaitlist(join(entry, customer, adults)))
        .unwrap();
    events.into_iter().next().unwrap()
}

fn returned_b() -> SeatEvent {
    SeatEvent::SeatsReturned(SeatsReturned {
        booking_id: id(BOOKING_B),
        seats: seats(&["11B", "11C"]),
        reason: "cancelled".into(),
    })
}

fn serve(at: chrono::DateTime<chrono::Utc>) -> ServeWaitlist {
    ServeWaitlist {
        booking_id: id(OFFER),
        pnr: Pnr::parse("W4ZTKQ").unwrap(),
        offer_expires_at: at + minutes(15),
        now: at,
    }
}

fn flight() -> Flight {
    Flight::fold(&flight_events())
}

fn with(mut history: Vec<SeatEvent>, more: impl IntoIterator<Item = SeatEvent>) -> SeatInventory {
    history.extend(more);
    SeatInventory::fold(&history)
}

#[test]
fn it_should_refuse_a_place_in_line_while_the_cabin_can_be_booked() {
    given::<SeatInventory>([inventory_opened()])
        .when(SeatCommand::JoinWaitlist(join(ENTRY_1, CUSTOMER, 2)))
        .then_err(SeatError::SeatsAvailable {
            cabin: Cabin::Economy,
            available: 6,
        });
}

#[test]
fn it_should_queue_a_party_in_a_sold_out_cabin_with_its_place() {
    let (events, inventory) = given::<SeatInventory>(sold_out())
        .when(SeatCommand::JoinWaitlist(join(ENTRY_1, CUSTOMER, 2)))
        .then_ok();
    assert!(
        matches!(&events[..], [SeatEvent::WaitlistJoined(j)]
            if j.entry_id == id(ENTRY_1) && j.subject == id(CUSTOMER) && j.passengers.len() == 2),
        "{events:?}"
    );
    assert_eq!(inventory.place_in_line(id(ENTRY_1)), Some(1));
    let inventory = with(
        sold_out(),
        [joined(ENTRY_1, CUSTOMER, 2), joined(ENTRY_2, 301, 1)],
    );
    assert_eq!(inventory.place_in_line(id(ENTRY_2)), Some(2));
}

#[test]
fn it_should_keep_one_open_entry_per_customer_and_cabin() {
    given::<SeatInventory>(with_line(&[(ENTRY_1, CUSTOMER, 1)]))
        .when(SeatCommand::JoinWaitlist(join(ENTRY_2, CUSTOMER, 1)))
        .then_err(SeatError::AlreadyWaiting(id(ENTRY_1)));
}

#[test]
fn it_should_refuse_a_party_larger_than_the_cabin_or_without_a_seat() {
    given::<SeatInventory>(sold_out())
        .when(SeatCommand::JoinWaitlist(join(ENTRY_1, CUSTOMER, 7)))
        .then_err_matching(|e| matches!(e, SeatError::CabinFull { requested: 7, .. }));
    let mut infant_only = join(ENTRY_1, CUSTOMER, 1);
    infant_only.passengers[0].kind = PassengerType::Infant;
    given::<SeatInventory>(sold_out())
        .when(SeatCommand::JoinWaitlist(infant_only))
        .then_err(SeatError::NothingRequested);
}

fn with_line(entries: &[(u128, u128, usize)]) -> Vec<SeatEvent> {
    let mut history = sold_out();
    history.extend(entries.iter().map(|(e, c, n)| joined(*e, *c, *n)));
    history
}

#[test]
fn it_should_let_a_waiting_entry_withdraw_and_only_a_waiting_one() {
    given::<SeatInventory>(with_line(&[(ENTRY_1, CUSTOMER, 1)]))
        .when(SeatCommand::WithdrawWaitlist {
            entry_id: id(ENTRY_1),
        })
        .then([SeatEvent::WaitlistWithdrawn(WaitlistWithdrawn {
            entry_id: id(ENTRY_1),
        })]);
    given::<SeatInventory>(with_line(&[]))
        .when(SeatCommand::WithdrawWaitlist {
            entry_id: id(ENTRY_1),
        })
        .then_err(SeatError::NoSuchEntry(id(ENTRY_1)));
    let mut offered = with_line(&[(ENTRY_1, CUSTOMER, 1)]);
    offered.push(returned_b());
    let served = serve_waitlist(&flight(), &SeatInventory::fold(&offered), serve(t0())).unwrap();
    offered.extend(served.seats);
    given::<SeatInventory>(offered)
        .when(SeatCommand::WithdrawWaitlist {
            entry_id: id(ENTRY_1),
        })
        .then_err(SeatError::EntryNotWaiting {
            entry_id: id(ENTRY_1),
            status: WaitlistStatus::Offered,
        });
}

#[test]
fn it_should_offer_returned_seats_to_the_first_entry_they_fit_as_a_held_booking() {
    // Three wait for 2 returned seats: the first needs 3 and is passed over.
    let inventory = with(
        with_line(&[(ENTRY_1, CUSTOMER, 3), (ENTRY_2, 301, 2), (ENTRY_3, 302, 1)]),
        [returned_b()],
    );
    let served = serve_waitlist(&flight(), &inventory, serve(t0())).unwrap();
    assert_eq!(served.offered, Some(id(ENTRY_2)));
    assert_eq!(
        served.seats,
        vec![
            SeatEvent::SeatsHeld(SeatsHeld {
                booking_id: id(OFFER),
                seats: seats(&["11B", "11C"]),
                expires_at: t0() + minutes(15),
            }),
            SeatEvent::WaitlistOffered(WaitlistOffered {
                entry_id: id(ENTRY_2),
                customer_id: id(301),
                booking_id: id(OFFER),
                expires_at: t0() + minutes(15),
            }),
        ]
    );
    let booking = Booking::fold(&served.booking);
    let info = booking.info.as_ref().unwrap();
    assert_eq!(info.customer_id, id(301));
    assert_eq!(booking.status, Some(BookingStatus::Held));
    assert_eq!(info.total, usd("840.00"));
    let after = served.seats.iter().fold(inventory, |s, e| s.evolve(e));
    // The entry behind it moves up; nothing is left to offer.
    assert_eq!(after.place_in_line(id(ENTRY_3)), Some(2));
    let again = serve_waitlist(&flight(), &after, serve(t0())).unwrap();
    assert_eq!(again, Served::default(), "a seat offered twice");
}

#[test]
fn it_should_give_returned_seats_to_the_line_before_walk_in_bookings() {
    let inventory = with(with_line(&[(ENTRY_1, CUSTOMER, 1)]), [returned_b()]);
    let walk_in = PlaceBooking {
        booking_id: id(OFFER),
        pnr: pnr(),
        customer_id: id(999),
        created_by: id(999),
        passengers: vec![PassengerRequest {
            passenger_id: id(1),
            kind: PassengerType::Adult,
            seat: Some(SeatRequest::Seat(seat("11C"))),
            travels_with: None,
            details: alan(),
        }],
        hold_expires_at: t0() + minutes(10),
        now: t0(),
    };
    assert_eq!(
        place_booking(&flight(), &inventory, None, walk_in.clone()),
        Err(PlaceBookingError::Seats(SeatError::LineFirst {
            cabin: Cabin::Economy
        }))
    );
    // A line the free seats cannot serve claims nothing.
    let inventory = with(with_line(&[(ENTRY_1, CUSTOMER, 3)]), [returned_b()]);
    assert!(place_booking(&flight(), &inventory, None, walk_in).is_ok());
}

#[test]
fn it_should_accept_an_offer_once_its_seats_are_sold_and_lapse_one_left_to_run_out() {
    let mut history = with_line(&[(ENTRY_1, CUSTOMER, 2), (ENTRY_2, 301, 2)]);
    history.push(returned_b());
    let served = serve_waitlist(&flight(), &SeatInventory::fold(&history), serve(t0())).unwrap();
    history.extend(served.seats);

    // Paid: the seats are sold, the entry accepted.
    let mut paid = history.clone();
    paid.push(SeatEvent::SeatsConfirmed(SeatsConfirmed {
        booking_id: id(OFFER),
        seats: seats(&["11B", "11C"]),
    }));
    let settled = serve_waitlist(&flight(), &SeatInventory::fold(&paid), serve(t0())).unwrap();
    assert_eq!(
        settled.seats,
        vec![SeatEvent::WaitlistOfferAccepted(WaitlistOfferAccepted {
            entry_id: id(ENTRY_1),
            booking_id: id(OFFER),
        })]
    );

    // Paid, then cancelled before the line was served again: still
    // accepted (the seats come back as a return, offered afresh).
    let mut cancelled = paid.clone();
    cancelled.push(SeatEvent::SeatsReturned(SeatsReturned {
        booking_id: id(OFFER),
        seats: seats(&["11B", "11C"]),
        reason: "cancelled".into(),
    }));
    let mut again = serve(t0());
    again.booking_id = id(OFFER + 2);
    let settled = serve_waitlist(&flight(), &SeatInventory::fold(&cancelled), again).unwrap();
    assert!(
        matches!(&settled.seats[..], [SeatEvent::WaitlistOfferAccepted(a), SeatEvent::SeatsHeld(_), SeatEvent::WaitlistOffered(o)]
            if a.entry_id == id(ENTRY_1) && o.entry_id == id(ENTRY_2)),
        "{:?}",
        settled.seats
    );

    // Unpaid past its deadline: lapsed, and the seats pass to the next in
    // the same decision (recording the stale hold as expired).
    let later = t0() + minutes(16);
    let mut next = serve(later);
    next.booking_id = id(OFFER + 1);
    let passed = serve_waitlist(&flight(), &SeatInventory::fold(&history), next).unwrap();
    assert_eq!(passed.offered, Some(id(ENTRY_2)));
    assert!(
        matches!(&passed.seats[..], [
            SeatEvent::WaitlistEntryLapsed(l),
            SeatEvent::HoldExpired(e),
            SeatEvent::SeatsHeld(h),
            SeatEvent::WaitlistOffered(o),
        ] if l.entry_id == id(ENTRY_1) && e.booking_id == id(OFFER)
            && h.booking_id == id(OFFER + 1) && o.entry_id == id(ENTRY_2)),
        "{:?}",
        passed.seats
    );
    // Still running: nothing changes.
    let early = serve_waitlist(
        &flight(),
        &SeatInventory::fold(&history),
        serve(t0() + minutes(5)),
    )
    .unwrap();
    assert_eq!(early, Served::default());
}

#[test]
fn it_should_close_the_line_of_a_cancelled_flight() {
    let flight = given::<Flight>(flight_events())
        .when(FlightCommand::Cancel {
            reason: "strike".into(),
            now: t0(),
        })
        .then_ok()
        .1;
    let inventory = with(
        with_line(&[(ENTRY_1, CUSTOMER, 1), (ENTRY_2, 301, 1)]),
        [returned_b()],
    );
    let served = serve_waitlist(&flight, &inventory, serve(t0())).unwrap();
    assert_eq!(served.offered, None);
    let lapsed: Vec<Uuid> = served
        .seats
        .iter()
        .filter_map(|e| match e {
            SeatEvent::WaitlistEntryLapsed(l) => Some(l.entry_id),
            _ => None,
        })
        .collect();
    assert_eq!(lapsed, vec![id(ENTRY_1), id(ENTRY_2)]);
}

#[test]
fn it_should_lapse_an_entry_whose_personal_data_was_erased_instead_of_blocking_the_line() {
    let mut erased = joined(ENTRY_1, CUSTOMER, 1);
    if let SeatEvent::WaitlistJoined(j) = &mut erased {
        j.personal = domain::values::Personal::Erased;
    }
    let mut history = sold_out();
    history.extend([erased, joined(ENTRY_2, 301, 1), returned_b()]);
    let first = serve_waitlist(&flight(), &SeatInventory::fold(&history), serve(t0())).unwrap();
    assert!(
        matches!(&first.seats[..], [SeatEvent::WaitlistEntryLapsed(l)] if l.entry_id == id(ENTRY_1)),
        "{:?}",
        first.seats
    );
    history.extend(first.seats);
    let second = serve_waitlist(&flight(), &SeatInventory::fold(&history), serve(t0())).unwrap();
    assert_eq!(second.offered, Some(id(ENTRY_2)));
}
