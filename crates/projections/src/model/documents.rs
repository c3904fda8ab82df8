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

type FlightRecord = (
    String,
    String,
    String,
    String,
    chrono::DateTime<chrono::Utc>,
    chrono::DateTime<chrono::Utc>,
);

/// The e-ticket of `booking`: its flight, and each passenger with their
/// seat (an infant on the lap of their adult's) and ticket number. Names
/// read `(erased)` once the customer's data is shredded.
pub async fn ticket_view(pool: &PgPool, booking: &BookingRow) -> sqlx::Result<TicketView> {
    let flight: Option<FlightRecord> = sqlx::query_as(
        "SELECT flight_number, airline, origin, destination, departs_at, arrives_at \
         FROM rm_flights WHERE flight_id = $1",
    )
    .bind(booking.flight_id)
    .fetch_optional(pool)
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
        segments: flight
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
            .map(
                |(first, last, kind, seat, lap, cabin, ticket)| TicketPassenger {
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
                },
            )
            .collect(),
    })
}
