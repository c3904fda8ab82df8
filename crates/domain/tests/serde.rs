//! The wire and storage formats other crates and clients rely on.
mod common;

use common::*;
use domain::booking::BookingEvent;
use domain::seats::SeatEvent;
use domain::user::{User, UserEvent};
use domain::values::{Personal, Role};
use domain::{decode, encode, Aggregate, DecodeError, DomainEvent};
use serde_json::json;

fn round_trip<E: DomainEvent>(event: E) {
    let (event_type, version, data) = encode(&event);
    assert_eq!(event_type, event.event_type());
    let back: E = decode(event_type, version, data.clone()).unwrap();
    assert_eq!(
        back, event,
        "{event_type} did not survive a round trip: {data}"
    );
}

#[test]
fn it_should_round_trip_every_kind_of_event() {
    let (flights, seats) = scheduled();
    flights.into_iter().for_each(round_trip);
    seats.into_iter().for_each(round_trip);
    round_trip(booking_created());
    round_trip(SeatEvent::SeatsHeld(domain::seats::SeatsHeld {
        booking_id: id(1),
        seats: vec![seat("1A")],
        expires_at: t0(),
    }));
    round_trip(SeatEvent::SeatChanged(domain::seats::SeatChanged {
        booking_id: id(1),
        from: seat("1A"),
        to: seat("2C"),
    }));
    round_trip(BookingEvent::PassengerSeatChanged(
        domain::booking::PassengerSeatChanged {
            booking_id: id(1),
            passenger_id: id(2),
            flight_id: None,
            from: seat("1A"),
            to: seat("2C"),
            changed_at: t0(),
        },
    ));
    round_trip(BookingEvent::PassengerSeatChanged(
        domain::booking::PassengerSeatChanged {
            booking_id: id(1),
            passenger_id: id(2),
            flight_id: Some(id(3)),
            from: seat("1A"),
            to: seat("2C"),
            changed_at: t0(),
        },
    ));
}

#[test]
fn it_should_keep_personal_data_in_one_top_level_field_beside_the_subject() {
    let (_, _, data) = encode(&booking_created());
    assert_eq!(data["subject"], json!(id(CUSTOMER)));
    assert_eq!(data["personal"]["known"][0]["details"]["first_name"], "Ada");
    assert_eq!(
        data["passengers"][0],
        json!({"passenger_id": id(PASSENGER_1), "type": "adult", "seat": "10A", "cabin": "economy", "fare": {"amount": "420.00", "currency": "USD"}})
    );
}

#[test]
fn it_should_decode_shredded_personal_data_as_erased() {
    let (t, v, mut data) = encode(&booking_created());
    data["personal"] = json!("erased");
    let BookingEvent::BookingCreated(e) = decode::<BookingEvent>(t, v, data).unwrap() else {
        unreachable!()
    };
    assert_eq!(e.personal, Personal::Erased);
}

#[test]
fn it_should_upcast_a_v1_registration_to_a_customer() {
    let v1 = json!({
        "user_id": id(CUSTOMER),
        "subject": id(CUSTOMER),
        "personal": {"known": {"email": "ada@example.com", "full_name": "Ada", "phone": null}},
        "registered_at": "2030-06-01T12:00:00Z"
    });
    let event: UserEvent = decode("UserRegistered", 1, v1).unwrap();
    assert_eq!(event.schema_version(), 2);
    assert_eq!(User::fold([&event]).role, Some(Role::Customer));
}

#[test]
fn it_should_report_malformed_or_unknown_events_without_panicking() {
    assert!(matches!(
        decode::<UserEvent>("UserRegistered", 2, json!({"user_id": 5})),
        Err(DecodeError::Malformed { .. })
    ));
    assert!(matches!(
        decode::<UserEvent>("UserRegistered", 1, json!([1, 2])),
        Err(DecodeError::Upcast(_))
    ));
    assert!(matches!(
        decode::<UserEvent>("UserVanished", 1, json!({})),
        Err(DecodeError::Malformed { .. })
    ));
    assert!(matches!(
        decode::<BookingEvent>("BookingCreated", 7, encode(&booking_created()).2),
        Err(DecodeError::TooNew { .. })
    ));
    assert!(decode::<SeatEvent>(
        "SeatsHeld",
        1,
        json!({"booking_id": id(1), "seats": ["99Z"], "expires_at": "2030-06-01T12:00:00Z"})
    )
    .is_err());
}

#[test]
fn it_should_use_the_contract_names_for_statuses_and_roles() {
    assert_eq!(
        json!(domain::booking::BookingStatus::PaymentPending),
        json!("PAYMENT_PENDING")
    );
    assert_eq!(
        json!(domain::payment::PaymentStatus::PartiallyRefunded),
        json!("PARTIALLY_REFUNDED")
    );
    assert_eq!(json!(Role::Auditor), json!("auditor"));
    assert_eq!(
        json!(usd("420")),
        json!({"amount": "420.00", "currency": "USD"})
    );
}
