//! A booking request as entered (passengers with a seat, a seat per
//! flight or a cabin), parsed into the domain's seat requests with every
//! invalid field named.

use chrono::NaiveDate;
use domain::booking::{PassengerDetails, PassengerRequest, PassengerType};
use domain::seats::SeatRequest;
use domain::values::{Cabin, Email, Seat};
use uuid::Uuid;

use crate::error::{CommandError, CommandResult, FieldError};

/// A new booking: passengers with the seat or cabin each wants.
#[derive(Debug, Clone)]
pub struct CreateBooking {
    /// The flights in travel order: one, or every flight of an itinerary
    /// (held all together or not at all).
    pub flights: Vec<Uuid>,
    /// Agents book for a customer; customers book for themselves.
    pub customer_id: Option<Uuid>,
    pub passengers: Vec<NewPassenger>,
    /// Taken off inside the booking's decision; an unknown, expired, used
    /// up or inapplicable code holds nothing.
    pub discount_code: Option<String>,
}

/// A passenger as entered: a `seat`, or a `cabin` to be given one.
#[derive(Debug, Clone)]
pub struct NewPassenger {
    pub first_name: String,
    pub last_name: String,
    pub date_of_birth: NaiveDate,
    pub email: Option<Email>,
    pub phone: Option<String>,
    pub passport: Option<String>,
    pub seat: Option<String>,
    /// An itinerary's seats, by flight; a flight not named gets a seat in
    /// `cabin`.
    pub seats: Vec<(Uuid, String)>,
    pub cabin: Option<Cabin>,
    pub kind: PassengerType,
    /// An infant's adult: their index in the same passenger list.
    pub travels_with: Option<usize>,
}

/// An itinerary's passengers: their requests on the first flight, and on
/// each further flight one request per passenger (`None` for an infant).
type ItineraryRequests = (Vec<PassengerRequest>, Vec<Vec<Option<SeatRequest>>>);

/// The passengers of a booking of `flights` parsed into seat requests on
/// each flight, every invalid field named. A passenger names their seat on
/// some flights (`seats`) and a `cabin` for the others, or a `cabin` for
/// all; an infant names neither.
pub(super) fn parse_itinerary(
    input: Vec<NewPassenger>,
    flights: &[Uuid],
) -> CommandResult<ItineraryRequests> {
    let mut errors = Vec::new();
    let first = flights[0];
    let mut further: Vec<Vec<Option<SeatRequest>>> = vec![vec![]; flights.len() - 1];
    let mut on_first = Vec::with_capacity(input.len());
    for (i, p) in input.into_iter().enumerate() {
        if p.seat.is_some() {
            errors.push(FieldError::new(
                format!("passengers[{i}].seat"),
                "a booking of several flights names seats by flight: {\"<flight_id>\": \"12A\"}",
            ));
        }
        for (f, _) in &p.seats {
            if !flights.contains(f) {
                errors.push(FieldError::new(
                    format!("passengers[{i}].seat"),
                    format!("flight {f} is not one of `flights`"),
                ));
            }
        }
        let seat_on = |f: &Uuid| p.seats.iter().find(|(x, _)| x == f).map(|(_, s)| s.clone());
        for (n, f) in flights[1..].iter().enumerate() {
            let request = match (p.kind, seat_on(f), p.cabin) {
                (PassengerType::Infant, _, _) => None,
                (_, Some(s), _) => match Seat::parse(&s) {
                    Ok(seat) => Some(SeatRequest::Seat(seat)),
                    Err(e) => {
                        errors.push(FieldError::new(
                            format!("passengers[{i}].seat"),
                            e.to_string(),
                        ));
                        None
                    }
                },
                (_, None, Some(cabin)) => Some(SeatRequest::Cabin(cabin)),
                (_, None, None) => {
                    errors.push(FieldError::new(
                        format!("passengers[{i}]"),
                        format!("no seat on flight {f}: name one in `seat`, or a `cabin`"),
                    ));
                    None
                }
            };
            further[n].push(request);
        }
        // The first flight as a booking of one flight reads it: its seat,
        // else the cabin.
        let seat = seat_on(&first);
        on_first.push(NewPassenger {
            cabin: if seat.is_some() { None } else { p.cabin },
            seat,
            seats: vec![],
            ..p
        });
    }
    let passengers = parse_passengers(on_first);
    match (passengers, errors.is_empty()) {
        (Ok(passengers), true) => Ok((passengers, further)),
        (Err(CommandError::Invalid(mut more)), _) => {
            errors.append(&mut more);
            Err(CommandError::Invalid(errors))
        }
        (Err(e), true) => Err(e),
        (_, false) => Err(CommandError::Invalid(errors)),
    }
}

/// The passengers of one flight parsed into seat requests, every invalid
/// field named.
pub(crate) fn parse_passengers(input: Vec<NewPassenger>) -> CommandResult<Vec<PassengerRequest>> {
    let mut errors = Vec::new();
    let mut passengers = Vec::with_capacity(input.len());
    let ids: Vec<Uuid> = input.iter().map(|_| Uuid::now_v7()).collect();
    let kinds: Vec<PassengerType> = input.iter().map(|p| p.kind).collect();
    for (i, p) in input.into_iter().enumerate() {
        if !p.seats.is_empty() {
            errors.push(FieldError::new(
                format!("passengers[{i}].seat"),
                "one flight: name the seat alone, as \"12A\"",
            ));
            continue;
        }
        let seat = match (p.kind, &p.seat, p.cabin) {
            (PassengerType::Infant, None, None) => Some(None),
            (PassengerType::Infant, _, _) => {
                errors.push(FieldError::new(
                    format!("passengers[{i}]"),
                    "an infant has no `seat` or `cabin`: they sit on the lap of the adult named by `travels_with`",
                ));
                None
            }
            (_, Some(s), None) => match Seat::parse(s) {
                Ok(seat) => Some(Some(SeatRequest::Seat(seat))),
                Err(e) => {
                    errors.push(FieldError::new(
                        format!("passengers[{i}].seat"),
                        e.to_string(),
                    ));
                    None
                }
            },
            (_, None, Some(cabin)) => Some(Some(SeatRequest::Cabin(cabin))),
            _ => {
                errors.push(FieldError::new(
                    format!("passengers[{i}]"),
                    "name exactly one of `seat` or `cabin`",
                ));
                None
            }
        };
        let travels_with = match (p.kind, p.travels_with) {
            (PassengerType::Infant, Some(j)) if kinds.get(j) == Some(&PassengerType::Adult) => {
                Some(Some(ids[j]))
            }
            (PassengerType::Infant, _) => {
                errors.push(FieldError::new(
                    format!("passengers[{i}].travels_with"),
                    "an infant names the index of an adult in `passengers`",
                ));
                None
            }
            (_, None) => Some(None),
            (_, Some(_)) => {
                errors.push(FieldError::new(
                    format!("passengers[{i}].travels_with"),
                    "only an infant travels with another passenger",
                ));
                None
            }
        };
        if let (Some(seat), Some(travels_with)) = (seat, travels_with) {
            passengers.push(PassengerRequest {
                passenger_id: ids[i],
                kind: p.kind,
                travels_with,
                seat,
                details: PassengerDetails {
                    first_name: p.first_name,
                    last_name: p.last_name,
                    date_of_birth: p.date_of_birth,
                    email: p.email,
                    phone: p.phone,
                    passport: p.passport,
                },
            });
        }
    }
    if errors.is_empty() {
        Ok(passengers)
    } else {
        Err(CommandError::Invalid(errors))
    }
}

/// A passenger's fields to change; `None` keeps the value.
#[derive(Debug, Clone, Default)]
pub struct PassengerChanges {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub date_of_birth: Option<NaiveDate>,
    pub email: Option<Email>,
    pub phone: Option<String>,
    pub passport: Option<String>,
}
