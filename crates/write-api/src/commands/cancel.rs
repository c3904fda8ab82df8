//! Cancelling a booking: one decision on the flight's lane that cancels the
//! booking and gives its seats back in the same transaction. Used by the
//! REST cancel command and by the flight-cancellation saga.

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use domain::booking::{Booking, BookingCommand, BookingEvent, BookingStatus, CancelledBy};
use domain::seats::{SeatCommand, SeatError};
use domain::Aggregate;
use eventstore::ExpectedVersion;
use serde_json::json;

use super::lane::{Decide, Decided};
use crate::error::ApiError;
use crate::http::bookings::{booking_error, seat_error};

/// The lane decision that cancels `booking` (read at `version`): held seats
/// are released, sold seats returned, and the refund the policy allows is
/// recorded on the booking for the saga to pay out.
pub fn cancellation(
    booking: Booking,
    version: u64,
    reason: String,
    by: CancelledBy,
    now: DateTime<Utc>,
) -> Decide {
    Box::new(move |flight, seats| {
        let id = booking.id().ok_or_else(|| ApiError::not_found("booking"))?;
        let departs_at = flight
            .departs_at()
            .ok_or_else(|| ApiError::not_found("flight"))?;
        let events = booking
            .decide(BookingCommand::Cancel {
                reason: reason.clone(),
                now,
                departs_at,
                by,
            })
            .map_err(booking_error)?;
        let seat_command = match booking.status {
            Some(BookingStatus::Confirmed | BookingStatus::Ticketed) => Some(SeatCommand::Return {
                booking_id: id,
                reason: reason.clone(),
            }),
            Some(BookingStatus::Held | BookingStatus::PaymentPending) => {
                Some(SeatCommand::Release {
                    booking_id: id,
                    reason: reason.clone(),
                })
            }
            _ => None,
        };
        let seat_events = match seat_command {
            Some(c) => match seats.decide(c) {
                Ok(events) => events,
                // An expired hold already gave its seats back.
                Err(SeatError::NothingHeld(_) | SeatError::NothingSold(_)) => vec![],
                Err(e) => return Err(seat_error(e)),
            },
            None => vec![],
        };
        let refund = events.iter().find_map(|e| match e {
            BookingEvent::BookingCancelled(c) => Some(c.refund),
            _ => None,
        });
        Ok(Decided {
            seats: seat_events,
            booking: Some((id, ExpectedVersion::Exact(version), events)),
            status: Some(StatusCode::ACCEPTED),
            body: json!({ "booking_id": id, "status": "CANCELLED", "refund": refund }),
            ..Decided::default()
        })
    })
}
