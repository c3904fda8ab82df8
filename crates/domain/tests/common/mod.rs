//! Fixtures shared by the scenario tests.
#![allow(dead_code)]

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use domain::booking::{
    BookingCreated, BookingEvent, PassengerDetails, PassengerRequest, PassengerType,
};
use domain::flight::{schedule_flight, CabinSpec, FlightEvent, ScheduleFlight};
use domain::seats::{SeatEvent, SeatRequest};
use domain::values::{AirportCode, Cabin, Currency, FlightNumber, Money, Pnr, Seat};
use uuid::Uuid;

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 6, 1, 12, 0, 0).unwrap()
}

pub fn minutes(n: i64) -> Duration {
    Duration::minutes(n)
}

pub fn departs() -> DateTime<Utc> {
    t0() + Duration::days(10)
}

pub fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

pub const FLIGHT: u128 = 1;
pub const BOOKING_A: u128 = 100;
pub const BOOKING_B: u128 = 200;
pub const CUSTOMER: u128 = 300;

pub fn usd(s: &str) -> Money {
    Money::parse(s, Currency::USD).unwrap()
}

pub fn seat(s: &str) -> Seat {
    Seat::parse(s).unwrap()
}

pub fn seats(list: &[&str]) -> Vec<Seat> {
    list.iter().map(|s| seat(s)).collect()
}

/// Business rows 1-2 (A, C), economy rows 10-11 (A, B, C): 4 + 6 seats.
pub fn schedule() -> ScheduleFlight {
    ScheduleFlight {
        flight_id: id(FLIGHT),
        flight_number: FlightNumber::parse("BA117").unwrap(),
        airline: "British Airways".into(),
        origin: AirportCode::parse("LHR").unwrap(),
        destination: AirportCode::parse("JFK").unwrap(),
        departs_at: departs(),
        arrives_at: departs() + Duration::hours(8),
        currency: Currency::USD,
        cabins: vec![
            CabinSpec {
                cabin: Cabin::Business,
                first_row: 1,
                last_row: 2,
                seat_letters: "AC".into(),
                fare: usd("1800.00"),
                child_percent: None,
                infant_percent: None,
            },
            CabinSpec {
                cabin: Cabin::Economy,
                first_row: 10,
                last_row: 11,
                seat_letters: "ABC".into(),
                fare: usd("420.00"),
                child_percent: None,
                infant_percent: None,
            },
        ],
        now: t0(),
    }
}

pub fn scheduled() -> (Vec<FlightEvent>, Vec<SeatEvent>) {
    schedule_flight(schedule()).unwrap()
}

pub fn flight_events() -> Vec<FlightEvent> {
    scheduled().0
}

pub fn inventory_opened() -> SeatEvent {
    scheduled().1.remove(0)
}

pub fn ada() -> PassengerDetails {
    PassengerDetails {
        first_name: "Ada".into(),
        last_name: "Lovelace".into(),
        date_of_birth: NaiveDate::from_ymd_opt(1990, 12, 10).unwrap(),
        email: Some(domain::values::Email::parse("ada@example.com").unwrap()),
        phone: None,
        passport: None,
    }
}

pub fn alan() -> PassengerDetails {
    PassengerDetails {
        first_name: "Alan".into(),
        last_name: "Turing".into(),
        date_of_birth: NaiveDate::from_ymd_opt(1992, 6, 23).unwrap(),
        email: None,
        phone: None,
        passport: None,
    }
}

/// Passenger `n` (Ada's details) of `kind`, asking for `seat`.
pub fn passenger(n: u128, kind: PassengerType, seat: Option<SeatRequest>) -> PassengerRequest {
    PassengerRequest {
        passenger_id: id(n),
        kind,
        seat,
        travels_with: None,
        details: ada(),
    }
}

pub fn pnr() -> Pnr {
    Pnr::parse("K7Q2MZ").unwrap()
}

pub const PASSENGER_1: u128 = 1001;
pub const PASSENGER_2: u128 = 1002;

/// A two-passenger economy booking (10A, 10B), held for 10 minutes.
pub fn booking_created() -> BookingEvent {
    use domain::booking::{BookedPassenger, PassengerPersonal};
    use domain::values::Personal;
    BookingEvent::BookingCreated(BookingCreated {
        booking_id: id(BOOKING_A),
        subject: id(CUSTOMER),
        pnr: pnr(),
        flight_id: id(FLIGHT),
        customer_id: id(CUSTOMER),
        created_by: id(CUSTOMER),
        passengers: vec![
            BookedPassenger {
                passenger_id: id(PASSENGER_1),
                kind: PassengerType::Adult,
                seat: Some(seat("10A")),
                travels_with: None,
                cabin: Cabin::Economy,
                fare: usd("420.00"),
            },
            BookedPassenger {
                passenger_id: id(PASSENGER_2),
                kind: PassengerType::Adult,
                seat: Some(seat("10B")),
                travels_with: None,
                cabin: Cabin::Economy,
                fare: usd("420.00"),
            },
        ],
        total: usd("840.00"),
        discount: None,
        hold_expires_at: t0() + minutes(10),
        created_at: t0(),
        personal: Personal::Known(vec![
            PassengerPersonal {
                passenger_id: id(PASSENGER_1),
                details: ada(),
            },
            PassengerPersonal {
                passenger_id: id(PASSENGER_2),
                details: alan(),
            },
        ]),
        connections: vec![],
    })
}

/// [`booking_created`], paid: the payment submitted (840.00) and confirmed.
pub fn booking_paid() -> Vec<BookingEvent> {
    use domain::booking::{BookingConfirmed, PaymentSubmitted};
    vec![
        booking_created(),
        BookingEvent::PaymentSubmitted(PaymentSubmitted {
            booking_id: id(BOOKING_A),
            payment_id: id(9),
            amount: usd("840.00"),
            submitted_at: t0(),
        }),
        BookingEvent::BookingConfirmed(BookingConfirmed {
            booking_id: id(BOOKING_A),
            confirmed_at: t0(),
        }),
    ]
}

/// Tickets for both passengers of [`booking_created`].
pub fn tickets_issued() -> BookingEvent {
    use domain::booking::{IssuedTicket, TicketsIssued};
    use domain::values::TicketNumber;
    BookingEvent::TicketsIssued(TicketsIssued {
        booking_id: id(BOOKING_A),
        tickets: [PASSENGER_1, PASSENGER_2]
            .iter()
            .zip(1..)
            .map(|(p, n)| IssuedTicket::new(id(*p), TicketNumber::new(125, n).unwrap()))
            .collect(),
        issued_at: t0(),
    })
}
