mod common;

use chrono::Duration;
use common::*;
use domain::flight::*;
use domain::testing::given;
use domain::values::{AirportCode, Cabin, Currency, Money};
use domain::Aggregate;

fn refused(cmd: ScheduleFlight, expected: FlightError, field: &str) {
    let err = schedule_flight(cmd).unwrap_err();
    assert_eq!(err, expected);
    assert_eq!(err.field(), Some(field));
}

fn cancelled() -> FlightEvent {
    FlightEvent::FlightCancelled(FlightCancelled {
        flight_id: id(FLIGHT),
        reason: "strike".into(),
        cancelled_at: t0(),
    })
}

#[test]
fn it_should_schedule_a_flight_and_open_its_seats_together() {
    let (flight_events, seat_events) = scheduled();
    let flight = Flight::fold(&flight_events);
    assert_eq!(flight.seat_map().len(), 10);
    assert_eq!(flight.seat_map()[0], (seat("1A"), Cabin::Business));
    assert_eq!(flight.fare(Cabin::Economy), Some(usd("420.00")));
    assert_eq!(flight.fare(Cabin::First), None);
    assert_eq!(flight.cabin_of(seat("11C")), Some(Cabin::Economy));
    let inventory = domain::seats::SeatInventory::fold(&seat_events);
    assert_eq!(inventory.available_in(Cabin::Economy, t0()), 6);
}

#[test]
fn it_should_not_schedule_a_flight_twice() {
    given::<Flight>(flight_events())
        .when(FlightCommand::Schedule(schedule()))
        .then_err(FlightError::AlreadyScheduled);
}

#[test]
fn it_should_refuse_a_flight_to_where_it_starts() {
    refused(
        ScheduleFlight {
            destination: AirportCode::parse("LHR").unwrap(),
            ..schedule()
        },
        FlightError::SameOriginAndDestination,
        "destination",
    );
}

#[test]
fn it_should_refuse_a_flight_that_lands_before_it_departs() {
    refused(
        ScheduleFlight {
            arrives_at: departs(),
            ..schedule()
        },
        FlightError::ArrivesBeforeDeparture,
        "arrives_at",
    );
}

#[test]
fn it_should_refuse_a_flight_in_the_past() {
    refused(
        ScheduleFlight {
            departs_at: t0(),
            ..schedule()
        },
        FlightError::DepartsInPast,
        "departs_at",
    );
}

#[test]
fn it_should_refuse_bad_cabin_layouts() {
    let mut s = schedule();
    s.cabins.clear();
    refused(s, FlightError::NoCabins, "cabins");

    let mut s = schedule();
    s.cabins[1].first_row = 2;
    refused(
        s,
        FlightError::OverlappingRows(Cabin::Business, Cabin::Economy),
        "cabins",
    );

    let mut s = schedule();
    s.cabins[1].cabin = Cabin::Business;
    refused(s, FlightError::DuplicateCabin(Cabin::Business), "cabins");

    let mut s = schedule();
    s.cabins[0].last_row = 100;
    refused(s, FlightError::InvalidRows(Cabin::Business), "cabins");

    let mut s = schedule();
    s.cabins[0].first_row = 3;
    refused(s, FlightError::InvalidRows(Cabin::Business), "cabins");

    for letters in ["AA", "AL", "", "A1"] {
        let mut s = schedule();
        s.cabins[0].seat_letters = letters.into();
        refused(
            s,
            FlightError::InvalidSeatLetters(Cabin::Business),
            "cabins",
        );
    }

    let mut s = schedule();
    s.cabins[0].fare = usd("0");
    refused(s, FlightError::InvalidFare(Cabin::Business), "fare");

    let mut s = schedule();
    s.cabins[0].fare = Money::parse("10", Currency::EUR).unwrap();
    refused(
        s,
        FlightError::WrongCurrency {
            expected: Currency::USD,
            found: Currency::EUR,
        },
        "fare",
    );

    refused(
        ScheduleFlight {
            airline: " ".into(),
            ..schedule()
        },
        FlightError::InvalidAirline,
        "airline",
    );
}

#[test]
fn it_should_normalise_seat_letters_to_upper_case() {
    let mut s = schedule();
    s.cabins[0].seat_letters = "ac".into();
    let flight = Flight::fold(&schedule_flight(s).unwrap().0);
    assert_eq!(flight.cabins()[0].seat_letters, "AC");
}

#[test]
fn it_should_change_a_fare() {
    let flight = given::<Flight>(flight_events())
        .when(FlightCommand::ChangeFare {
            cabin: Cabin::Economy,
            fare: usd("399.99"),
            now: t0(),
        })
        .then([FlightEvent::FareChanged(FareChanged {
            flight_id: id(FLIGHT),
            cabin: Cabin::Economy,
            previous_fare: usd("420.00"),
            fare: usd("399.99"),
            changed_at: t0(),
        })]);
    assert_eq!(flight.fare(Cabin::Economy), Some(usd("399.99")));
}

#[test]
fn it_should_refuse_a_fare_for_a_cabin_the_flight_does_not_have() {
    given::<Flight>(flight_events())
        .when(FlightCommand::ChangeFare {
            cabin: Cabin::First,
            fare: usd("5000"),
            now: t0(),
        })
        .then_err(FlightError::UnknownCabin(Cabin::First));
}

#[test]
fn it_should_refuse_a_fare_in_another_currency_or_of_zero() {
    given::<Flight>(flight_events())
        .when(FlightCommand::ChangeFare {
            cabin: Cabin::Economy,
            fare: usd("0"),
            now: t0(),
        })
        .then_err(FlightError::InvalidFare(Cabin::Economy));
}

#[test]
fn it_should_not_change_a_cancelled_or_departed_flight() {
    let mut history = flight_events();
    history.push(cancelled());
    given::<Flight>(history)
        .when(FlightCommand::ChangeFare {
            cabin: Cabin::Economy,
            fare: usd("1"),
            now: t0(),
        })
        .then_err(FlightError::Cancelled);
    given::<Flight>(flight_events())
        .when(FlightCommand::ChangeFare {
            cabin: Cabin::Economy,
            fare: usd("1"),
            now: departs(),
        })
        .then_err(FlightError::Departed);
    given::<Flight>([])
        .when(FlightCommand::ChangeFare {
            cabin: Cabin::Economy,
            fare: usd("1"),
            now: t0(),
        })
        .then_err(FlightError::NotScheduled);
}

#[test]
fn it_should_reschedule_a_flight() {
    let later = departs() + Duration::hours(2);
    let flight = given::<Flight>(flight_events())
        .when(FlightCommand::Reschedule {
            departs_at: later,
            arrives_at: later + Duration::hours(8),
            now: t0(),
        })
        .then([FlightEvent::FlightRescheduled(FlightRescheduled {
            flight_id: id(FLIGHT),
            departs_at: later,
            arrives_at: later + Duration::hours(8),
            previous_departs_at: departs(),
            previous_arrives_at: departs() + Duration::hours(8),
            rescheduled_at: t0(),
        })]);
    assert_eq!(flight.departs_at(), Some(later));
}

#[test]
fn it_should_refuse_a_reschedule_into_the_past_or_backwards() {
    given::<Flight>(flight_events())
        .when(FlightCommand::Reschedule {
            departs_at: t0() - Duration::hours(1),
            arrives_at: t0(),
            now: t0(),
        })
        .then_err(FlightError::DepartsInPast);
    given::<Flight>(flight_events())
        .when(FlightCommand::Reschedule {
            departs_at: departs(),
            arrives_at: departs(),
            now: t0(),
        })
        .then_err(FlightError::ArrivesBeforeDeparture);
}

#[test]
fn it_should_cancel_a_flight_once() {
    let flight = given::<Flight>(flight_events())
        .when(FlightCommand::Cancel {
            reason: " strike ".into(),
            now: t0(),
        })
        .then([cancelled()]);
    assert!(flight.is_cancelled());
    let mut history = flight_events();
    history.push(cancelled());
    given::<Flight>(history)
        .when(FlightCommand::Cancel {
            reason: "again".into(),
            now: t0(),
        })
        .then_err(FlightError::AlreadyCancelled);
}

#[test]
fn it_should_refuse_to_cancel_without_a_reason_or_after_departure() {
    given::<Flight>(flight_events())
        .when(FlightCommand::Cancel {
            reason: "".into(),
            now: t0(),
        })
        .then_err(FlightError::InvalidReason);
    given::<Flight>(flight_events())
        .when(FlightCommand::Cancel {
            reason: "late".into(),
            now: departs(),
        })
        .then_err(FlightError::Departed);
}
