//! Trips: passenger types (adult, child, infant on a lap) and discount
//! codes, decided when a booking is placed.

mod common;

use common::*;
use domain::booking::*;
use domain::discount::*;
use domain::flight::{CabinSpec, Flight};
use domain::seats::{SeatEvent, SeatInventory, SeatRequest};
use domain::testing::given;
use domain::values::{AirportCode, Cabin, Currency, Money};
use domain::Aggregate;
use uuid::Uuid;

fn flight_and_seats() -> (Flight, SeatInventory) {
    let (f, s) = scheduled();
    (Flight::fold(&f), SeatInventory::fold(&s))
}

fn family() -> Vec<PassengerRequest> {
    let economy = Some(SeatRequest::Cabin(Cabin::Economy));
    let mut infant = passenger(3, PassengerType::Infant, None);
    infant.travels_with = Some(id(1));
    vec![
        passenger(1, PassengerType::Adult, economy),
        passenger(2, PassengerType::Child, economy),
        infant,
    ]
}

fn place(passengers: Vec<PassengerRequest>) -> PlaceBooking {
    PlaceBooking {
        booking_id: id(BOOKING_A),
        pnr: pnr(),
        customer_id: id(CUSTOMER),
        created_by: id(CUSTOMER),
        passengers,
        hold_expires_at: t0() + minutes(10),
        now: t0(),
    }
}

#[test]
fn it_should_price_children_and_infants_by_the_cabins_default_shares() {
    let (flight, seats) = flight_and_seats();
    let placed = place_booking(&flight, &seats, None, place(family())).unwrap();
    // Two seats held: the infant takes none.
    assert!(
        matches!(&placed.seats[..], [SeatEvent::SeatsHeld(h)] if h.seats.len() == 2),
        "{:?}",
        placed.seats
    );
    let booking = Booking::fold(&placed.booking);
    let fares: Vec<Money> = booking.passengers.iter().map(|p| p.fare).collect();
    assert_eq!(fares, vec![usd("420.00"), usd("315.00"), usd("42.00")]);
    assert_eq!(booking.info.as_ref().unwrap().total, usd("777.00"));
    let infant = &booking.passengers[2];
    assert_eq!(infant.seat, None);
    assert_eq!(infant.cabin, Cabin::Economy);
    assert_eq!(infant.travels_with, Some(id(1)));
    assert_eq!(booking.seats().len(), 2);
}

#[test]
fn it_should_price_by_the_shares_a_cabin_sets() {
    let mut schedule = schedule();
    schedule.cabins[1] = CabinSpec {
        child_percent: Some(50),
        infant_percent: Some(0),
        ..schedule.cabins[1].clone()
    };
    let (f, s) = domain::flight::schedule_flight(schedule).unwrap();
    let (flight, seats) = (Flight::fold(&f), SeatInventory::fold(&s));
    let placed = place_booking(&flight, &seats, None, place(family())).unwrap();
    let booking = Booking::fold(&placed.booking);
    let fares: Vec<Money> = booking.passengers.iter().map(|p| p.fare).collect();
    assert_eq!(fares, vec![usd("420.00"), usd("210.00"), usd("0.00")]);
}

#[test]
fn it_should_seat_an_infant_only_on_an_adults_lap_one_per_adult() {
    let (flight, seats) = flight_and_seats();
    let economy = Some(SeatRequest::Cabin(Cabin::Economy));

    // On a child's lap.
    let mut p = family();
    p[2].travels_with = Some(id(2));
    assert_eq!(
        place_booking(&flight, &seats, None, place(p)),
        Err(PlaceBookingError::Booking(
            BookingError::InfantWithoutAdult(id(3))
        ))
    );
    // With nobody.
    let mut p = family();
    p[2].travels_with = None;
    assert!(matches!(
        place_booking(&flight, &seats, None, place(p)),
        Err(PlaceBookingError::Booking(
            BookingError::InfantWithoutAdult(_)
        ))
    ));
    // Two infants on one adult.
    let mut p = family();
    let mut second = passenger(4, PassengerType::Infant, None);
    second.travels_with = Some(id(1));
    p.push(second);
    assert_eq!(
        place_booking(&flight, &seats, None, place(p)),
        Err(PlaceBookingError::Booking(BookingError::SecondInfant(id(
            1
        ))))
    );
    // An infant asking for a seat, an adult asking for none.
    let mut p = family();
    p[2].seat = economy;
    assert!(place_booking(&flight, &seats, None, place(p)).is_err());
    let mut p = family();
    p[0].seat = None;
    assert!(place_booking(&flight, &seats, None, place(p)).is_err());
}

#[test]
fn it_should_keep_an_infants_lap_when_the_booking_is_created_directly() {
    let (flight, seats) = flight_and_seats();
    let placed = place_booking(&flight, &seats, None, place(family())).unwrap();
    let BookingEvent::BookingCreated(created) = &placed.booking[0] else {
        panic!("expected BookingCreated");
    };
    // The event says who is who, readable without the personal data.
    let kinds: Vec<PassengerType> = created.passengers.iter().map(|p| p.kind).collect();
    assert_eq!(
        kinds,
        vec![
            PassengerType::Adult,
            PassengerType::Child,
            PassengerType::Infant
        ]
    );
    // An event from before passenger types reads as adults with seats.
    let mut old = serde_json::to_value(created).unwrap();
    for p in old["passengers"].as_array_mut().unwrap() {
        p.as_object_mut().unwrap().remove("type");
    }
    let read: BookingCreated = serde_json::from_value(old).unwrap();
    assert!(read
        .passengers
        .iter()
        .all(|p| p.kind == PassengerType::Adult));
}

// ------------------------------------------------------------ discounts

fn code() -> Code {
    Code::parse("summer-10").unwrap()
}

fn create_code(reduction: Reduction) -> DiscountCommand {
    DiscountCommand::Create {
        code: code(),
        reduction,
        valid_from: t0() - minutes(60),
        valid_until: t0() + minutes(60),
        max_uses: 2,
        max_uses_per_customer: 1,
        routes: vec![],
        cabins: vec![],
        created_by: id(1),
        now: t0(),
    }
}

fn created(reduction: Reduction) -> DiscountEvent {
    DiscountCode::default()
        .decide(create_code(reduction))
        .unwrap()
        .remove(0)
}

fn redeem(customer: u128, fares: &str) -> DiscountCommand {
    DiscountCommand::Redeem {
        booking_id: Uuid::now_v7(),
        customer_id: id(customer),
        routes: vec![lhr_jfk()],
        cabins: vec![Cabin::Economy],
        fares: usd(fares),
        now: t0(),
    }
}

fn lhr_jfk() -> Route {
    Route {
        origin: AirportCode::parse("LHR").unwrap(),
        destination: AirportCode::parse("JFK").unwrap(),
    }
}

fn redeemed(customer: u128, amount: &str) -> DiscountEvent {
    DiscountEvent::DiscountRedeemed(DiscountRedeemed {
        code: code(),
        booking_id: id(77),
        customer_id: id(customer),
        amount: usd(amount),
        redeemed_at: t0(),
    })
}

#[test]
fn it_should_normalise_codes_to_upper_case_and_refuse_odd_ones() {
    assert_eq!(code().as_str(), "SUMMER-10");
    assert_eq!(
        Code::parse("Summer-10").unwrap().stream_uuid(),
        code().stream_uuid()
    );
    for bad in ["ab", "has space", "ü-code", &"X".repeat(33)] {
        assert_eq!(Code::parse(bad), Err(InvalidCode), "{bad}");
    }
}

#[test]
fn it_should_create_a_code_once_with_sane_terms() {
    given::<DiscountCode>([created(Reduction::PercentOff(10))])
        .when(create_code(Reduction::PercentOff(10)))
        .then_err(DiscountError::AlreadyExists(code()));
    given::<DiscountCode>([])
        .when(create_code(Reduction::PercentOff(0)))
        .then_err(DiscountError::InvalidPercent);
    given::<DiscountCode>([])
        .when(create_code(Reduction::PercentOff(101)))
        .then_err(DiscountError::InvalidPercent);
    given::<DiscountCode>([])
        .when(create_code(Reduction::AmountOff(usd("0"))))
        .then_err(DiscountError::InvalidAmount);
    let mut backwards = create_code(Reduction::PercentOff(10));
    if let DiscountCommand::Create {
        valid_until,
        valid_from,
        ..
    } = &mut backwards
    {
        *valid_until = *valid_from;
    }
    given::<DiscountCode>([])
        .when(backwards)
        .then_err(DiscountError::InvalidWindow);
}

#[test]
fn it_should_take_a_percentage_off_rounded_to_the_cent() {
    let state = given::<DiscountCode>([created(Reduction::PercentOff(10))])
        .when(redeem(300, "777.05"))
        .then_events(|e| {
            matches!(e, [DiscountEvent::DiscountRedeemed(r)]
                if r.amount == usd("77.71") && r.customer_id == id(300) && r.code == code())
        });
    assert_eq!(state.uses, 1);
    assert_eq!(state.total_discounted, Some(usd("77.71")));
}

#[test]
fn it_should_count_uses_in_total_and_per_customer() {
    let code_state =
        DiscountCode::fold(&[created(Reduction::PercentOff(10)), redeemed(300, "42.00")]);
    assert_eq!(code_state.uses, 1);
    assert_eq!(
        code_state.decide(redeem(300, "420.00")),
        Err(DiscountError::CustomerCapReached(code()))
    );
    let full = code_state.evolve(&redeemed(301, "42.00"));
    assert_eq!(
        full.decide(redeem(302, "420.00")),
        Err(DiscountError::Exhausted(code()))
    );
}

#[test]
fn it_should_refuse_a_code_outside_its_window_route_cabin_or_currency() {
    let state = DiscountCode::fold(&[created(Reduction::PercentOff(10))]);
    let DiscountCommand::Redeem {
        booking_id,
        customer_id,
        routes,
        cabins,
        fares,
        ..
    } = redeem(300, "100.00")
    else {
        unreachable!()
    };
    let at = |now| DiscountCommand::Redeem {
        booking_id,
        customer_id,
        routes: routes.clone(),
        cabins: cabins.clone(),
        fares,
        now,
    };
    assert!(matches!(
        state.decide(at(t0() - minutes(61))),
        Err(DiscountError::NotYetValid { .. })
    ));
    assert!(matches!(
        state.decide(at(t0() + minutes(60))),
        Err(DiscountError::Expired { .. })
    ));

    let mut limited = create_code(Reduction::AmountOff(
        Money::parse("5", Currency::EUR).unwrap(),
    ));
    if let DiscountCommand::Create { routes, cabins, .. } = &mut limited {
        *routes = vec![Route::parse("LHR-CDG").unwrap()];
        *cabins = vec![Cabin::Business];
    }
    let limited = DiscountCode::default()
        .decide(limited)
        .map(|e| DiscountCode::fold(&e))
        .unwrap();
    assert!(matches!(
        limited.decide(redeem(300, "100.00")),
        Err(DiscountError::RouteNotEligible { .. })
    ));
    let mut on_route = redeem(300, "100.00");
    if let DiscountCommand::Redeem { routes, .. } = &mut on_route {
        *routes = vec![Route::parse("lhr-cdg").unwrap()];
    }
    assert!(matches!(
        limited.decide(on_route.clone()),
        Err(DiscountError::CabinNotEligible { .. })
    ));
    if let DiscountCommand::Redeem { cabins, .. } = &mut on_route {
        *cabins = vec![Cabin::Business];
    }
    assert!(matches!(
        limited.decide(on_route),
        Err(DiscountError::WrongCurrency { .. })
    ));
}

#[test]
fn it_should_always_leave_a_cent_to_pay() {
    assert_eq!(
        DiscountCode::reduction_of(Reduction::PercentOff(100), usd("420.00")).unwrap(),
        usd("419.99")
    );
    assert_eq!(
        DiscountCode::reduction_of(Reduction::AmountOff(usd("500")), usd("420.00")).unwrap(),
        usd("419.99")
    );
    assert_eq!(
        DiscountCode::reduction_of(Reduction::AmountOff(usd("20")), usd("420.00")).unwrap(),
        usd("20.00")
    );
}

#[test]
fn it_should_place_a_discounted_booking_and_use_the_code_in_the_same_decision() {
    let (flight, seats) = flight_and_seats();
    let state = DiscountCode::fold(&[created(Reduction::PercentOff(10))]);
    let placed = place_booking(&flight, &seats, Some(&state), place(family())).unwrap();
    let booking = Booking::fold(&placed.booking);
    let info = booking.info.unwrap();
    // 777.00 of fares, 10 % off.
    assert_eq!(info.total, usd("699.30"));
    assert_eq!(
        info.discount,
        Some(AppliedDiscount {
            code: code(),
            amount: usd("77.70")
        })
    );
    assert!(matches!(
        &placed.discount[..],
        [DiscountEvent::DiscountRedeemed(r)] if r.booking_id == id(BOOKING_A) && r.amount == usd("77.70")
    ));

    // An exhausted code holds nothing.
    let used_up = state
        .evolve(&redeemed(1, "1.00"))
        .evolve(&redeemed(2, "1.00"));
    assert_eq!(
        place_booking(&flight, &seats, Some(&used_up), place(family())),
        Err(PlaceBookingError::Discount(
            DiscountError::Exhausted(code())
        ))
    );
    // So does an unknown one.
    assert_eq!(
        place_booking(
            &flight,
            &seats,
            Some(&DiscountCode::default()),
            place(family())
        ),
        Err(PlaceBookingError::Discount(DiscountError::Unknown))
    );
}

#[test]
fn it_should_refuse_a_booking_whose_total_is_not_its_fares_less_its_discount() {
    let mut passengers = vec![NewPassenger {
        passenger_id: id(PASSENGER_1),
        kind: PassengerType::Adult,
        seat: Some(seat("10A")),
        travels_with: None,
        cabin: Cabin::Economy,
        fare: usd("420.00"),
        details: ada(),
    }];
    let create =
        |total: &str, discount: &str, passengers: Vec<NewPassenger>| BookingCommand::Create {
            booking_id: id(BOOKING_A),
            pnr: pnr(),
            flight_id: id(FLIGHT),
            customer_id: id(CUSTOMER),
            created_by: id(CUSTOMER),
            passengers,
            connections: vec![],
            total: usd(total),
            discount: Some(AppliedDiscount {
                code: code(),
                amount: usd(discount),
            }),
            hold_expires_at: t0() + minutes(10),
            now: t0(),
        };
    given::<Booking>([])
        .when(create("400.00", "10.00", passengers.clone()))
        .then_err(BookingError::TotalMismatch {
            total: usd("400.00"),
            fares: usd("420.00"),
        });
    passengers[0].fare = usd("420.00");
    given::<Booking>([])
        .when(create("0.00", "420.00", passengers))
        .then_err(BookingError::TotalMismatch {
            total: usd("0.00"),
            fares: usd("420.00"),
        });
}

// ------------------------------------------------------- one passenger off

fn take_off(passenger: u128, now: chrono::DateTime<chrono::Utc>) -> BookingCommand {
    BookingCommand::CancelPassenger {
        passenger_id: id(passenger),
        reason: "not coming".into(),
        now,
        departs_at: departs(),
        by: CancelledBy::Customer,
    }
}

#[test]
fn a_passenger_taken_off_a_held_booking_is_owed_nothing_and_lowers_what_is_due() {
    let booking = given::<Booking>([booking_created()])
        .when(take_off(PASSENGER_2, t0()))
        .then_events(|e| {
            matches!(e, [BookingEvent::PassengerCancelled(c)]
                if c.refund == usd("0") && c.share == usd("420.00")
                    && c.booking_status == BookingStatus::Held)
        });
    assert_eq!(booking.passengers.len(), 1);
    assert_eq!(booking.seats(), seats(&["10A"]));
    assert_eq!(booking.amount_due(), Some(usd("420.00")));
    // Paying it charges what is left.
    let submitted = booking
        .decide(BookingCommand::SubmitPayment {
            payment_id: id(9),
            now: t0(),
        })
        .unwrap();
    assert!(
        matches!(&submitted[..], [BookingEvent::PaymentSubmitted(p)] if p.amount == usd("420.00"))
    );
}

#[test]
fn a_passenger_taken_off_a_paid_booking_is_refunded_their_share_by_the_policy() {
    // Ten days out: all of it.
    let booking = given::<Booking>(booking_paid())
        .when(take_off(PASSENGER_1, t0()))
        .then_events(
            |e| matches!(e, [BookingEvent::PassengerCancelled(c)] if c.refund == usd("420.00")),
        );
    assert_eq!(booking.refund, Some(usd("420.00")));
    assert_eq!(booking.value_left(), Some(usd("420.00")));
    // Within a day of departure: half.
    given::<Booking>(booking_paid())
        .when(take_off(PASSENGER_1, departs() - minutes(60)))
        .then_events(
            |e| matches!(e, [BookingEvent::PassengerCancelled(c)] if c.refund == usd("210.00")),
        );
    // The booking's own cancellation then refunds what is left, and the
    // refunds add up.
    let cancelled = given::<Booking>(booking_paid())
        .when(take_off(PASSENGER_1, t0()))
        .then_ok()
        .1
        .decide(BookingCommand::Cancel {
            reason: "all off".into(),
            now: t0(),
            departs_at: departs(),
            by: CancelledBy::Customer,
        })
        .unwrap();
    assert!(
        matches!(&cancelled[..], [BookingEvent::BookingCancelled(c)] if c.refund == usd("420.00"))
    );
    let after = given::<Booking>(booking_paid())
        .when(take_off(PASSENGER_1, t0()))
        .then_ok()
        .1
        .evolve(&cancelled[0]);
    assert_eq!(after.refund, Some(usd("840.00")));
}

#[test]
fn a_discount_is_prorated_over_the_passengers_shares() {
    let BookingEvent::BookingCreated(mut created) = booking_created() else {
        unreachable!()
    };
    created.total = usd("756.00");
    created.discount = Some(AppliedDiscount {
        code: code(),
        amount: usd("84.00"),
    });
    let mut events = booking_paid();
    events[0] = BookingEvent::BookingCreated(created);
    given::<Booking>(events)
        .when(take_off(PASSENGER_2, t0()))
        .then_events(|e| {
            matches!(e, [BookingEvent::PassengerCancelled(c)]
                if c.share == usd("378.00") && c.refund == usd("378.00"))
        });
}

#[test]
fn the_last_passenger_an_infants_adult_and_late_or_pending_cancels_are_refused() {
    let one = {
        let BookingEvent::BookingCreated(mut c) = booking_created() else {
            unreachable!()
        };
        c.passengers.truncate(1);
        c.total = usd("420.00");
        BookingEvent::BookingCreated(c)
    };
    given::<Booking>([one])
        .when(take_off(PASSENGER_1, t0()))
        .then_err(BookingError::LastPassenger(id(PASSENGER_1)));
    let lap = {
        let BookingEvent::BookingCreated(mut c) = booking_created() else {
            unreachable!()
        };
        c.passengers[1].kind = PassengerType::Infant;
        c.passengers[1].seat = None;
        c.passengers[1].travels_with = Some(id(PASSENGER_1));
        BookingEvent::BookingCreated(c)
    };
    given::<Booking>([lap])
        .when(take_off(PASSENGER_1, t0()))
        .then_err(BookingError::InfantOnLap(id(PASSENGER_1)));
    given::<Booking>([booking_created()])
        .when(take_off(PASSENGER_1, departs()))
        .then_err(BookingError::Departed);
    given::<Booking>([booking_created()])
        .when(take_off(4242, t0()))
        .then_err(BookingError::UnknownPassenger(id(4242)));
    let pending = booking_paid()[..2].to_vec();
    given::<Booking>(pending)
        .when(take_off(PASSENGER_1, t0()))
        .then_err_matching(|e| matches!(e, BookingError::InvalidState { .. }));
}

#[test]
fn a_passenger_taken_off_gives_their_seat_back_in_the_same_decision() {
    let (flight, inventory) = flight_and_seats();
    let placed = place_booking(
        &flight,
        &inventory,
        None,
        place(vec![
            passenger(
                1,
                PassengerType::Adult,
                Some(SeatRequest::Cabin(Cabin::Economy)),
            ),
            passenger(
                2,
                PassengerType::Adult,
                Some(SeatRequest::Cabin(Cabin::Economy)),
            ),
        ]),
    )
    .unwrap();
    let inventory = placed.seats.iter().fold(inventory, |s, e| s.evolve(e));
    let booking = Booking::fold(&placed.booking);
    let (events, mut seat_events) = cancel_passenger(
        &booking,
        &[(&flight, &inventory)],
        CancelPassenger {
            passenger_id: id(2),
            reason: "not coming".into(),
            by: CancelledBy::Customer,
            now: t0(),
        },
    )
    .unwrap();
    assert!(matches!(&events[..], [BookingEvent::PassengerCancelled(_)]));
    assert_eq!(seat_events.len(), 1, "one flight, one list of seat events");
    let seat_events = seat_events.remove(0);
    assert!(
        matches!(&seat_events[..], [SeatEvent::SeatsReleased(r)] if r.seats == seats(&["10B"]))
    );
    let inventory = seat_events.iter().fold(inventory, |s, e| s.evolve(e));
    assert!(inventory.is_available(seat("10B"), t0()));
    assert!(!inventory.is_available(seat("10A"), t0()));
}
