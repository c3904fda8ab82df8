//! Given/when/then for bookings of several flights (a connection, a round
//! trip, several cities): held on every flight or on none, priced flight by
//! flight, ticketed per passenger per flight, and given back on every flight
//! when they end.
mod common;

use chrono::{DateTime, Duration, Utc};
use common::*;
use domain::booking::*;
use domain::discount::{
    Code, DiscountCode, DiscountCommand, DiscountError, Reduction, Route as CodeRoute,
};
use domain::flight::{schedule_flight, Flight, FlightCancelled, FlightEvent};
use domain::fulfilment;
use domain::seats::*;
use domain::values::{AirportCode, Cabin, Currency, TicketNumber};
use domain::Aggregate;

/// LHR-JFK (the common flight), then JFK-BOS two hours after it lands.
const ONWARD: u128 = 2;
const LATER: u128 = 3;

struct Leg {
    flight: Flight,
    seats: SeatInventory,
}

impl Leg {
    fn pair(&self) -> FlightSeats<'_> {
        (&self.flight, &self.seats)
    }

    fn with(&self, events: &[SeatEvent]) -> Leg {
        Leg {
            flight: self.flight.clone(),
            seats: events.iter().fold(self.seats.clone(), |s, e| s.evolve(e)),
        }
    }
}

fn leg(events: (Vec<FlightEvent>, Vec<SeatEvent>)) -> Leg {
    Leg {
        flight: Flight::fold(&events.0),
        seats: SeatInventory::fold(&events.1),
    }
}

fn first() -> Leg {
    leg(scheduled())
}

/// A flight from JFK leaving `after` the first one lands, economy at
/// `fare`.
fn onward(n: u128, after: Duration, fare: &str) -> Leg {
    let mut s = schedule();
    s.flight_id = id(n);
    s.flight_number = domain::values::FlightNumber::parse("BA2").unwrap();
    s.origin = AirportCode::parse("JFK").unwrap();
    s.destination = AirportCode::parse("BOS").unwrap();
    s.departs_at = departs() + Duration::hours(8) + after;
    s.arrives_at = s.departs_at + Duration::hours(1);
    s.cabins[1].fare = usd(fare);
    leg(schedule_flight(s).unwrap())
}

fn connection() -> Leg {
    onward(ONWARD, Duration::hours(2), "150.00")
}

fn economy() -> Option<SeatRequest> {
    Some(SeatRequest::Cabin(Cabin::Economy))
}

/// Two adults in economy; `connections` flights after the first.
fn two_adults(connections: usize) -> PlaceItinerary {
    PlaceItinerary {
        booking: PlaceBooking {
            booking_id: id(BOOKING_A),
            pnr: pnr(),
            customer_id: id(CUSTOMER),
            created_by: id(CUSTOMER),
            passengers: vec![
                passenger(PASSENGER_1, PassengerType::Adult, economy()),
                passenger(PASSENGER_2, PassengerType::Adult, economy()),
            ],
            hold_expires_at: t0() + minutes(10),
            now: t0(),
        },
        connections: vec![vec![economy(), economy()]; connections],
    }
}

fn place(legs: &[&Leg], cmd: PlaceItinerary) -> Result<PlacedItinerary, PlaceBookingError> {
    let pairs: Vec<FlightSeats<'_>> = legs.iter().map(|l| l.pair()).collect();
    place_itinerary(&pairs, None, cmd)
}

/// The two adults held on the first flight and its connection.
fn held() -> (Booking, Leg, Leg) {
    let (a, b) = (first(), connection());
    let placed = place(&[&a, &b], two_adults(1)).unwrap();
    (
        Booking::fold(&placed.booking),
        a.with(&placed.seats[0]),
        b.with(&placed.seats[1]),
    )
}

fn soon() -> DateTime<Utc> {
    t0() + minutes(5)
}

/// The same seats, in whatever order.
#[track_caller]
fn assert_same_seats(mut a: Vec<domain::values::Seat>, mut b: Vec<domain::values::Seat>) {
    a.sort();
    b.sort();
    assert_eq!(a, b);
}

/// `state` after `events`.
fn after<A: Aggregate>(state: &A, events: &[A::Event]) -> A {
    events.iter().fold(state.clone(), |s, e| s.evolve(e))
}

fn pay(booking: &Booking) -> Booking {
    let submitted = booking
        .decide(BookingCommand::SubmitPayment {
            payment_id: id(9),
            now: soon(),
        })
        .unwrap();
    after(booking, &submitted)
}

/// Confirmed on both flights of [`held`]: the booking and the flights
/// with their seats sold.
fn confirmed() -> (Booking, Leg, Leg) {
    let (booking, a, b) = held();
    let paid = pay(&booking);
    let (events, sold) = fulfilment::confirm(&paid, &[&a.seats, &b.seats], soon()).unwrap();
    assert!(sold
        .iter()
        .all(|s| matches!(&s[..], [SeatEvent::SeatsConfirmed(_)])));
    (after(&paid, &events), a.with(&sold[0]), b.with(&sold[1]))
}

/// `IssueTickets` with `tickets` on `booking`.
fn issue(booking: &Booking, tickets: Vec<IssuedTicket>) -> domain::testing::When<Booking> {
    domain::testing::given_state(booking.clone()).when(BookingCommand::IssueTickets {
        tickets,
        now: soon(),
    })
}

/// Tickets for every passenger on every flight of `booking`.
fn all_tickets(booking: &Booking) -> Vec<IssuedTicket> {
    let mut n = 0;
    let mut tickets = vec![];
    for flight in booking.flight_ids() {
        for p in &booking.passengers {
            n += 1;
            tickets.push(IssuedTicket::on(
                flight,
                p.passenger_id,
                TicketNumber::new(125, n).unwrap(),
            ));
        }
    }
    tickets
}

#[test]
fn it_should_hold_every_flight_of_a_connection_and_price_it_flight_by_flight() {
    let (a, b) = (first(), connection());
    let placed = place(&[&a, &b], two_adults(1)).unwrap();

    // Two seats held on each flight, for the same booking and time.
    assert_eq!(placed.seats.len(), 2);
    for events in &placed.seats {
        assert!(
            matches!(&events[..], [SeatEvent::SeatsHeld(h)]
                if h.booking_id == id(BOOKING_A) && h.seats.len() == 2
                    && h.expires_at == t0() + minutes(10)),
            "{events:?}"
        );
    }
    let booking = Booking::fold(&placed.booking);
    assert_eq!(booking.flight_ids(), vec![id(FLIGHT), id(ONWARD)]);
    assert!(booking.is_itinerary());
    // 2 x 420.00 on the first flight, 2 x 150.00 on the second.
    assert_eq!(booking.info.as_ref().unwrap().total, usd("1140.00"));
    for p in &booking.passengers {
        assert_eq!(p.fare, usd("420.00"));
        assert_eq!(p.legs.len(), 1);
        assert_eq!(p.legs[0].flight_id, id(ONWARD));
        assert_eq!(p.legs[0].fare, usd("150.00"));
        assert_eq!(p.legs[0].cabin, Cabin::Economy);
        assert_eq!(p.fares().unwrap(), usd("570.00"));
    }
    // The seats the booking names are the ones each flight holds for it.
    let (a, b) = (a.with(&placed.seats[0]), b.with(&placed.seats[1]));
    assert_same_seats(
        booking.seats_on(id(FLIGHT)),
        a.seats.seats_of(id(BOOKING_A)),
    );
    assert_same_seats(
        booking.seats_on(id(ONWARD)),
        b.seats.seats_of(id(BOOKING_A)),
    );
}

#[test]
fn it_should_hold_nothing_when_one_flight_has_no_seats_left() {
    let (a, b) = (first(), connection());
    // Someone else holds five of the connection's six economy seats.
    let taken = b
        .seats
        .decide(SeatCommand::Hold {
            booking_id: id(BOOKING_B),
            requests: vec![SeatRequest::Cabin(Cabin::Economy); 5],
            expires_at: t0() + minutes(10),
            now: t0(),
        })
        .unwrap();
    let b = b.with(&taken);
    let err = place(&[&a, &b], two_adults(1)).unwrap_err();
    assert!(
        matches!(err, PlaceBookingError::Seats(SeatError::CabinFull { .. })),
        "{err:?}"
    );
    // Nothing was decided for the first flight either: the caller appends
    // nothing, so its seats stay on sale.
    let one_left = place(
        &[&a, &b],
        PlaceItinerary {
            booking: PlaceBooking {
                passengers: vec![passenger(PASSENGER_1, PassengerType::Adult, economy())],
                ..two_adults(1).booking
            },
            connections: vec![vec![economy()]],
        },
    )
    .unwrap();
    assert_eq!(one_left.seats.len(), 2);
}

#[test]
fn it_should_refuse_a_connection_shorter_than_the_minimum() {
    let (a, b) = (first(), onward(ONWARD, Duration::minutes(44), "150.00"));
    assert_eq!(
        place(&[&a, &b], two_adults(1)).unwrap_err(),
        PlaceBookingError::ConnectionTooShort(id(ONWARD))
    );
    let (a, b) = (first(), onward(ONWARD, MIN_CONNECTION, "150.00"));
    assert!(place(&[&a, &b], two_adults(1)).is_ok());
}

#[test]
fn it_should_refuse_flights_out_of_order_or_named_twice() {
    let (a, b) = (first(), connection());
    assert_eq!(
        place(&[&b, &a], two_adults(1)).unwrap_err(),
        PlaceBookingError::OutOfOrder(id(FLIGHT))
    );
    assert_eq!(
        place(&[&a, &a], two_adults(1)).unwrap_err(),
        PlaceBookingError::Booking(BookingError::FlightTwice(id(FLIGHT)))
    );
    // Seven flights are more than an itinerary holds.
    let many: Vec<Leg> = (0..7)
        .map(|n| onward(10 + n, Duration::days(n as i64 + 1), "10.00"))
        .collect();
    let legs: Vec<&Leg> = many.iter().collect();
    assert_eq!(
        place(&legs, two_adults(6)).unwrap_err(),
        PlaceBookingError::Booking(BookingError::FlightCount)
    );
    // A request per flight: one missing for the second flight.
    assert_eq!(
        place(&[&a, &b], two_adults(0)).unwrap_err(),
        PlaceBookingError::Booking(BookingError::FlightCount)
    );
}

#[test]
fn it_should_allow_an_open_jaw_without_a_connection_time() {
    // Lands at JFK, leaves from elsewhere ten minutes later: no connection
    // to make, only the order counts.
    let mut s = schedule();
    s.flight_id = id(ONWARD);
    s.origin = AirportCode::parse("EWR").unwrap();
    s.destination = AirportCode::parse("BOS").unwrap();
    s.departs_at = departs() + Duration::hours(8) + minutes(10);
    s.arrives_at = s.departs_at + Duration::hours(1);
    let b = leg(schedule_flight(s).unwrap());
    assert!(place(&[&first(), &b], two_adults(1)).is_ok());
}

#[test]
fn it_should_refuse_an_itinerary_with_a_cancelled_flight_or_in_two_currencies() {
    let a = first();
    let mut b = connection();
    b.flight = b
        .flight
        .evolve(&FlightEvent::FlightCancelled(FlightCancelled {
            flight_id: id(ONWARD),
            reason: "weather".into(),
            cancelled_at: t0(),
        }));
    assert_eq!(
        place(&[&a, &b], two_adults(1)).unwrap_err(),
        PlaceBookingError::FlightCancelled
    );
    let mut s = schedule();
    s.flight_id = id(ONWARD);
    s.origin = AirportCode::parse("JFK").unwrap();
    s.destination = AirportCode::parse("LHR").unwrap();
    s.departs_at = departs() + Duration::days(1);
    s.arrives_at = s.departs_at + Duration::hours(8);
    s.currency = Currency::EUR;
    for c in &mut s.cabins {
        c.fare = domain::values::Money::parse("100.00", Currency::EUR).unwrap();
    }
    let euros = leg(schedule_flight(s).unwrap());
    assert_eq!(
        place(&[&a, &euros], two_adults(1)).unwrap_err(),
        PlaceBookingError::MixedCurrencies
    );
}

#[test]
fn it_should_seat_an_infant_on_the_same_lap_on_every_flight_and_price_each() {
    let (a, b) = (first(), connection());
    let mut cmd = two_adults(1);
    let mut infant = passenger(3, PassengerType::Infant, None);
    infant.travels_with = Some(id(PASSENGER_1));
    cmd.booking.passengers.push(infant);
    cmd.connections = vec![vec![economy(), economy(), None]];
    let placed = place(&[&a, &b], cmd.clone()).unwrap();
    let booking = Booking::fold(&placed.booking);
    let baby = &booking.passengers[2];
    assert_eq!((baby.seat, baby.legs[0].seat), (None, None));
    // 10 % of each flight's economy fare.
    assert_eq!((baby.fare, baby.legs[0].fare), (usd("42.00"), usd("15.00")));
    assert_eq!(booking.info.as_ref().unwrap().total, usd("1197.00"));

    // An infant given a seat on the second flight is refused.
    cmd.connections = vec![vec![economy(), economy(), economy()]];
    assert_eq!(
        place(&[&a, &b], cmd).unwrap_err(),
        PlaceBookingError::Booking(BookingError::SegmentMismatch(id(ONWARD)))
    );
}

fn code_for(routes: Vec<CodeRoute>) -> DiscountCode {
    let created = DiscountCode::default()
        .decide(DiscountCommand::Create {
            code: Code::parse("trip-10").unwrap(),
            reduction: Reduction::PercentOff(10),
            valid_from: t0() - minutes(60),
            valid_until: t0() + minutes(60),
            max_uses: 5,
            max_uses_per_customer: 1,
            routes,
            cabins: vec![],
            created_by: id(1),
            now: t0(),
        })
        .unwrap();
    DiscountCode::fold(&created)
}

fn route(from: &str, to: &str) -> CodeRoute {
    CodeRoute {
        origin: AirportCode::parse(from).unwrap(),
        destination: AirportCode::parse(to).unwrap(),
    }
}

#[test]
fn it_should_take_a_code_off_the_whole_itinerary_and_invoice_it_per_flight() {
    let (a, b) = (first(), connection());
    let code = code_for(vec![]);
    let placed = place_itinerary(&[a.pair(), b.pair()], Some(&code), two_adults(1)).unwrap();
    assert_eq!(placed.discount.len(), 1);
    let booking = Booking::fold(&placed.booking);
    // 10 % off 1140.00.
    assert_eq!(booking.info.as_ref().unwrap().total, usd("1026.00"));

    // Paid: a line per passenger per flight and the discount's credit, adding
    // up to what was charged.
    let paid = pay(&booking);
    let confirmed = paid
        .decide(BookingCommand::Confirm { now: soon() })
        .unwrap();
    let paid = after(&paid, &confirmed);
    let lines = paid.invoice_lines().unwrap();
    let texts: Vec<&str> = lines.iter().map(|l| l.description.as_str()).collect();
    assert_eq!(lines.len(), 5, "{texts:?}");
    assert!(texts[0].ends_with(", flight 1 of 2") && texts[2].ends_with(", flight 2 of 2"));
    assert_eq!(texts[4], "Discount TRIP-10");
    let charged = lines
        .iter()
        .filter(|l| !l.credit)
        .fold(usd("0"), |t, l| t.checked_add(&l.unit_price).unwrap());
    assert_eq!(charged, usd("1140.00"));
    assert_eq!(lines[4].unit_price, usd("114.00"));

    // A code for the first flight's route only does not cover the second.
    let narrow = code_for(vec![route("LHR", "JFK")]);
    let err = place_itinerary(&[a.pair(), b.pair()], Some(&narrow), two_adults(1)).unwrap_err();
    assert!(
        matches!(
            err,
            PlaceBookingError::Discount(DiscountError::RouteNotEligible { .. })
        ),
        "{err:?}"
    );
}

#[test]
fn it_should_ticket_every_passenger_on_every_flight() {
    let (confirmed, _, _) = confirmed();
    assert_eq!(confirmed.status, Some(BookingStatus::Confirmed));

    // The first flight's tickets alone are not enough.
    let mut tickets = all_tickets(&confirmed);
    let only_first: Vec<IssuedTicket> = tickets[..2].to_vec();
    issue(&confirmed, only_first).then_err(BookingError::TicketsMismatch);
    // Nor a ticket on a flight the booking does not fly.
    tickets[3].flight_id = Some(id(LATER));
    issue(&confirmed, tickets).then_err(BookingError::TicketsMismatch);

    let (_, ticketed) = issue(&confirmed, all_tickets(&confirmed)).then_ok();
    assert_eq!(ticketed.status, Some(BookingStatus::Ticketed));
    for p in &ticketed.passengers {
        let first = p.ticket_number.clone().unwrap();
        let second = p.legs[0].ticket_number.clone().unwrap();
        assert_ne!(first, second, "a ticket per flight");
    }
}

#[test]
fn it_should_keep_a_single_flights_tickets_as_they_were_recorded() {
    // A booking of one flight records no flight on its tickets, as before
    // itineraries, whether or not the caller named it.
    let a = first();
    let placed = place(&[&a], two_adults(0)).unwrap();
    let booking = pay(&Booking::fold(&placed.booking));
    let a = a.with(&placed.seats[0]);
    let (events, _) = fulfilment::confirm(&booking, &[&a.seats], soon()).unwrap();
    let confirmed = after(&booking, &events);
    let (events, _) = issue(&confirmed, all_tickets(&confirmed)).then_ok();
    let BookingEvent::TicketsIssued(issued) = &events[0] else {
        panic!("{events:?}")
    };
    assert!(issued.tickets.iter().all(|t| t.flight_id.is_none()));
}

#[test]
fn it_should_give_back_every_flights_seats_when_cancelled() {
    let (booking, a, b) = held();
    let cancel = CancelBooking {
        reason: "plans changed".into(),
        by: CancelledBy::Customer,
        now: soon(),
    };
    let (events, seats) = cancel_booking(&booking, &[a.pair(), b.pair()], cancel.clone()).unwrap();
    assert!(matches!(&events[..], [BookingEvent::BookingCancelled(_)]));
    let (a2, b2) = (a.with(&seats[0]), b.with(&seats[1]));
    assert!(a2.seats.seats_of(id(BOOKING_A)).is_empty());
    assert!(b2.seats.seats_of(id(BOOKING_A)).is_empty());

    // The flights must be the booking's, in its order.
    assert_eq!(
        cancel_booking(&booking, &[b.pair(), a.pair()], cancel.clone()).unwrap_err(),
        CancelBookingError::FlightNotFound
    );
    assert_eq!(
        cancel_booking(&booking, &[a.pair()], cancel).unwrap_err(),
        CancelBookingError::FlightNotFound
    );
}

#[test]
fn it_should_refund_a_paid_itinerary_by_the_policy_from_its_first_departure() {
    let (confirmed, a, b) = confirmed();
    // Two hours before the first flight leaves: half of 1140.00 back.
    let (events, seats) = cancel_booking(
        &confirmed,
        &[a.pair(), b.pair()],
        CancelBooking {
            reason: "plans changed".into(),
            by: CancelledBy::Customer,
            now: departs() - Duration::hours(2),
        },
    )
    .unwrap();
    let [BookingEvent::BookingCancelled(c)] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(c.refund, usd("570.00"));
    assert!(seats
        .iter()
        .all(|s| matches!(&s[..], [SeatEvent::SeatsReturned(r)] if r.seats.len() == 2)));
}

#[test]
fn it_should_take_one_passenger_off_every_flight_with_their_whole_share() {
    let (confirmed, a, b) = confirmed();
    let theirs = (
        confirmed.passengers[1].seat.unwrap(),
        confirmed.passengers[1].legs[0].seat.unwrap(),
    );
    let (events, seats) = cancel_passenger(
        &confirmed,
        &[a.pair(), b.pair()],
        CancelPassenger {
            passenger_id: id(PASSENGER_2),
            reason: "not coming".into(),
            by: CancelledBy::Customer,
            now: t0(),
        },
    )
    .unwrap();
    let [BookingEvent::PassengerCancelled(c)] = &events[..] else {
        panic!("{events:?}")
    };
    // More than a day out: their fares on both flights back.
    assert_eq!((c.share, c.refund), (usd("570.00"), usd("570.00")));
    let (a, b) = (a.with(&seats[0]), b.with(&seats[1]));
    assert!(a.seats.is_available(theirs.0, t0()));
    assert!(b.seats.is_available(theirs.1, t0()));
    let left = after(&confirmed, &events);
    assert_same_seats(left.seats_on(id(FLIGHT)), a.seats.seats_of(id(BOOKING_A)));
    assert_same_seats(left.seats_on(id(ONWARD)), b.seats.seats_of(id(BOOKING_A)));
}

#[test]
fn it_should_change_a_seat_on_the_connection_alone() {
    let (booking, _, b) = held();
    let on_first = booking.passengers[0].seat.unwrap();
    let before = booking.passengers[0].legs[0].seat.unwrap();
    let free = b
        .flight
        .seat_map()
        .into_iter()
        .filter(|(_, cabin)| *cabin == Cabin::Economy)
        .map(|(s, _)| s)
        .find(|s| b.seats.is_available(*s, soon()) && *s != before)
        .unwrap();
    let (events, seat_events) = change_seat(
        &booking,
        &b.flight,
        &b.seats,
        ChangeSeat {
            passenger_id: id(PASSENGER_1),
            seat: free,
            now: soon(),
        },
    )
    .unwrap();
    let [BookingEvent::PassengerSeatChanged(changed)] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(changed.flight_id, Some(id(ONWARD)));
    let b = b.with(&seat_events);
    assert!(b.seats.is_available(before, soon()));
    assert!(!b.seats.is_available(free, soon()));
    let moved = after(&booking, &events);
    assert_eq!(moved.passengers[0].legs[0].seat, Some(free));
    assert_eq!(
        moved.passengers[0].seat,
        Some(on_first),
        "first flight untouched"
    );
    assert_same_seats(moved.seats_on(id(ONWARD)), b.seats.seats_of(id(BOOKING_A)));

    // A flight the booking does not fly.
    let other = onward(LATER, Duration::days(1), "150.00");
    let err = change_seat(
        &booking,
        &other.flight,
        &other.seats,
        ChangeSeat {
            passenger_id: id(PASSENGER_1),
            seat: free,
            now: soon(),
        },
    )
    .unwrap_err();
    assert_eq!(
        err,
        ChangeSeatError::Booking(BookingError::NotOnFlight(id(LATER)))
    );
}

#[test]
fn it_should_not_move_an_itinerary() {
    let (booking, a, _) = held();
    let later = onward(LATER, Duration::days(1), "150.00");
    let err = move_booking(
        &booking,
        (&a.flight, &a.seats),
        (&later.flight, &later.seats),
        MoveBooking {
            from_flight_id: id(FLIGHT),
            to_flight_id: id(LATER),
            supplement_id: id(7),
            now: soon(),
        },
    )
    .unwrap_err();
    assert_eq!(
        err,
        MoveBookingError::Booking(BookingError::NotForItinerary("move to another flight"))
    );
}

#[test]
fn it_should_fail_and_release_the_rest_when_one_flights_hold_is_gone() {
    let (booking, a, b) = held();
    let paid = pay(&booking);
    // The connection's hold was given back (an operator's release).
    let released = b
        .seats
        .decide(SeatCommand::Release {
            booking_id: id(BOOKING_A),
            reason: "released".into(),
        })
        .unwrap();
    let b = b.with(&released);
    let (events, seats) = fulfilment::confirm(&paid, &[&a.seats, &b.seats], soon()).unwrap();
    assert!(matches!(&events[..], [BookingEvent::BookingFailed(_)]));
    // Nothing sold; the first flight's seats go back too.
    assert!(matches!(&seats[0][..], [SeatEvent::SeatsReleased(_)]));
    assert!(seats[1].is_empty());
}

#[test]
fn it_should_expire_and_fail_a_payment_on_every_flight() {
    let (booking, a, b) = held();
    let late = t0() + minutes(11);
    let (events, seats) = fulfilment::expire_hold(&booking, &[&a.seats, &b.seats], late).unwrap();
    assert!(matches!(&events[..], [BookingEvent::BookingExpired(_)]));
    assert!(seats
        .iter()
        .all(|s| matches!(&s[..], [SeatEvent::HoldExpired(_)])));

    let paid = pay(&booking);
    let (events, seats) =
        fulfilment::fail_payment(&paid, &[&a.seats, &b.seats], "card declined").unwrap();
    assert!(matches!(
        &events[..],
        [BookingEvent::BookingPaymentFailed(_)]
    ));
    assert!(seats
        .iter()
        .all(|s| matches!(&s[..], [SeatEvent::SeatsReleased(_)])));

    // Paid after the hold ran out: the booking expires on every flight.
    let (events, seats) = fulfilment::confirm(&paid, &[&a.seats, &b.seats], late).unwrap();
    assert!(matches!(&events[..], [BookingEvent::BookingExpired(_)]));
    assert!(seats
        .iter()
        .all(|s| matches!(&s[..], [SeatEvent::HoldExpired(_)])));
}

#[test]
fn it_should_refuse_a_created_itinerary_that_leaves_a_passenger_behind() {
    let (a, b) = (first(), connection());
    let BookingEvent::BookingCreated(created) =
        place(&[&a, &b], two_adults(1)).unwrap().booking.remove(0)
    else {
        unreachable!()
    };
    let mut segment = created.connections[0].clone();
    segment.passengers.pop();
    let passengers = created
        .passengers
        .iter()
        .map(|p| NewPassenger {
            passenger_id: p.passenger_id,
            kind: p.kind,
            seat: p.seat,
            travels_with: p.travels_with,
            cabin: p.cabin,
            fare: p.fare,
            details: ada(),
        })
        .collect();
    domain::testing::given::<Booking>([])
        .when(BookingCommand::Create {
            booking_id: id(BOOKING_A),
            pnr: pnr(),
            flight_id: id(FLIGHT),
            customer_id: id(CUSTOMER),
            created_by: id(CUSTOMER),
            passengers,
            connections: vec![segment],
            total: usd("990.00"),
            discount: None,
            hold_expires_at: t0() + minutes(10),
            now: t0(),
        })
        .then_err(BookingError::SegmentMismatch(id(ONWARD)));
}

#[test]
fn it_should_read_a_booking_created_before_itineraries_as_one_flight() {
    let BookingEvent::BookingCreated(mut created) = booking_created() else {
        unreachable!()
    };
    let json = serde_json::to_value(&created).unwrap();
    assert!(
        json.get("connections").is_none(),
        "one flight writes no connections"
    );
    created.connections = connection_of(&created);
    let back: BookingCreated =
        serde_json::from_value(serde_json::to_value(&created).unwrap()).unwrap();
    assert_eq!(back, created);
    let old: BookingCreated = serde_json::from_value(json).unwrap();
    assert!(old.connections.is_empty());
}

fn connection_of(created: &BookingCreated) -> Vec<BookedSegment> {
    vec![BookedSegment {
        flight_id: id(ONWARD),
        passengers: created
            .passengers
            .iter()
            .map(|p| SegmentPassenger {
                passenger_id: p.passenger_id,
                seat: p.seat,
                cabin: p.cabin,
                fare: usd("150.00"),
            })
            .collect(),
    }]
}
