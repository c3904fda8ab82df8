//! The documents' views of the read models: what an e-ticket prints, for
//! the download route and for the mail that carries it.

use documents::{FlightView, TicketPassenger, TicketView};
use sqlx::PgPool;

use super::bookings::BookingRow;

type PassengerRow = (
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
);

/// A passenger on a further flight of an itinerary: as [`PassengerRow`],
/// and the flight's number.
type ConnectionRow = (
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
);

type FlightRecord = (
    String,
    String,
    String,
    String,
    chrono::DateTime<chrono::Utc>,
    chrono::DateTime<chrono::Utc>,
);

/// The e-ticket of `booking`: its flights in the order flown, and each
/// passenger with their seat (an infant on the lap of their adult's) and
/// ticket number on each. Names read `(erased)` once the customer's data is
/// shredded.
pub async fn ticket_view(pool: &PgPool, booking: &BookingRow) -> sqlx::Result<TicketView> {
    let flights: Vec<FlightRecord> = sqlx::query_as(
        "SELECT f.flight_number, f.airline, f.origin, f.destination, f.departs_at, f.arrives_at \
         FROM (SELECT $1::uuid AS flight_id, 0 AS ordinal \
               UNION SELECT DISTINCT flight_id, ordinal FROM rm_booking_connections \
                     WHERE booking_id = $2) t \
         JOIN rm_flights f ON f.flight_id = t.flight_id ORDER BY t.ordinal",
    )
    .bind(booking.flight_id)
    .bind(booking.booking_id)
    .fetch_all(pool)
    .await?;
    let connections: Vec<ConnectionRow> = sqlx::query_as(
        "SELECT p.first_name, p.last_name, p.passenger_type, c.seat, \
                (SELECT a.seat FROM rm_booking_connections a \
                  WHERE a.booking_id = c.booking_id AND a.flight_id = c.flight_id \
                    AND a.passenger_id = p.travels_with), \
                c.cabin, c.ticket_number, f.flight_number \
         FROM rm_booking_connections c \
         JOIN rm_booking_passengers p \
           ON p.booking_id = c.booking_id AND p.passenger_id = c.passenger_id \
         LEFT JOIN rm_flights f ON f.flight_id = c.flight_id \
         WHERE c.booking_id = $1 ORDER BY c.ordinal, p.ordinal",
    )
    .bind(booking.booking_id)
    .fetch_all(pool)
    .await?;
    let passengers: Vec<PassengerRow> = sqlx::query_as(
        "SELECT p.first_name, p.last_name, p.passenger_type, p.seat, \
                (SELECT a.seat FROM rm_booking_passengers a \
                  WHERE a.booking_id = p.booking_id AND a.passenger_id = p.travels_with), \
                p.cabin, p.ticket_number \
         FROM rm_booking_passengers p WHERE p.booking_id = $1 ORDER BY p.ordinal",
    )
    .bind(booking.booking_id)
    .fetch_all(pool)
    .await?;
    let when = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
    Ok(TicketView {
        pnr: booking.pnr.clone(),
        status: booking.status.as_str().to_owned(),
        segments: flights
            .clone()
            .into_iter()
            .map(
                |(number, airline, origin, destination, departs, arrives)| FlightView {
                    flight_number: number,
                    airline,
                    origin,
                    destination,
                    departs_at: when(departs),
                    arrives_at: when(arrives),
                },
            )
            .collect(),
        passengers: passengers
            .into_iter()
            .map(|(first, last, kind, seat, lap, cabin, ticket)| {
                // On an itinerary each ticket names its flight.
                let flight = (!connections.is_empty())
                    .then(|| flights.first().map(|f| f.0.clone()))
                    .flatten();
                (first, last, kind, seat, lap, cabin, ticket, flight)
            })
            .chain(connections.clone())
            .map(
                |(first, last, kind, seat, lap, cabin, ticket, flight)| TicketPassenger {
                    name: match (first, last) {
                        (Some(f), Some(l)) => format!("{f} {l}"),
                        _ => "(erased)".into(),
                    },
                    kind,
                    seat: match (seat, lap) {
                        (Some(s), _) => s,
                        (None, Some(lap)) => format!("on the lap of {lap}"),
                        (None, None) => "-".into(),
                    },
                    cabin: cabin.replace('_', " "),
                    ticket_number: ticket,
                    flight,
                },
            )
            .collect(),
    })
}
