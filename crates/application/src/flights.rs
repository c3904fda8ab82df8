//! Flights: schedule, fares, reschedule, cancel (admins).

use chrono::{DateTime, Utc};
use domain::flight::{schedule_flight, CabinSpec, Flight, FlightCommand, ScheduleFlight};
use domain::seats::SeatInventory;
use domain::values::{AirportCode, Cabin, Currency, FlightNumber, Money, Role};
use domain::Aggregate;
use eventstore::{ExpectedVersion, StreamAppend, StreamId};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::command::encode_events;
use crate::command::lane::Decided;
use crate::error::{flight_error, CommandError, CommandResult, FieldError};
use crate::{CommandContext, Outcome, Services};
use auth::Caller;

/// A flight to schedule, as entered.
#[derive(Debug, Clone)]
pub struct NewFlight {
    pub flight_number: String,
    pub airline: String,
    pub origin: String,
    pub destination: String,
    pub departs_at: DateTime<Utc>,
    pub arrives_at: DateTime<Utc>,
    pub currency: String,
    pub cabins: Vec<NewCabin>,
}

/// One cabin of a new flight: rows, seat letters and fare.
#[derive(Debug, Clone)]
pub struct NewCabin {
    pub cabin: Cabin,
    pub first_row: u8,
    pub last_row: u8,
    pub seat_letters: String,
    pub fare: Decimal,
    /// A child's and an infant's share of `fare` in percent, when not the
    /// defaults.
    pub child_percent: Option<u8>,
    pub infant_percent: Option<u8>,
}

impl NewFlight {
    /// Parsed into the domain's types, every invalid field named.
    fn parse(self, flight_id: Uuid, now: DateTime<Utc>) -> CommandResult<ScheduleFlight> {
        let mut errors = Vec::new();
        let flight_number = FlightNumber::parse(&self.flight_number)
            .map_err(|e| errors.push(FieldError::new("flight_number", e.to_string())))
            .ok();
        let origin = AirportCode::parse(&self.origin)
            .map_err(|e| errors.push(FieldError::new("origin", e.to_string())))
            .ok();
        let destination = AirportCode::parse(&self.destination)
            .map_err(|e| errors.push(FieldError::new("destination", e.to_string())))
            .ok();
        let currency = Currency::parse(&self.currency)
            .map_err(|e| errors.push(FieldError::new("currency", e.to_string())))
            .ok();
        let mut cabins = Vec::new();
        if let Some(currency) = currency {
            for (i, c) in self.cabins.into_iter().enumerate() {
                match Money::new(c.fare, currency) {
                    Ok(fare) => cabins.push(CabinSpec {
                        cabin: c.cabin,
                        first_row: c.first_row,
                        last_row: c.last_row,
                        seat_letters: c.seat_letters,
                        fare,
                        child_percent: c.child_percent,
                        infant_percent: c.infant_percent,
                    }),
                    Err(e) => {
                        errors.push(FieldError::new(format!("cabins[{i}].fare"), e.to_string()))
                    }
                }
            }
        }
        let (Some(flight_number), Some(origin), Some(destination), Some(currency), true) = (
            flight_number,
            origin,
            destination,
            currency,
            errors.is_empty(),
        ) else {
            return Err(CommandError::Invalid(errors));
        };
        Ok(ScheduleFlight {
            flight_id,
            flight_number,
            airline: self.airline,
            origin,
            destination,
            departs_at: self.departs_at,
            arrives_at: self.arrives_at,
            currency,
            cabins,
            now,
        })
    }
}

impl Services {
    /// Schedules a flight with its cabins, seat map and fares: the flight
    /// and its seat inventory are created together.
    pub async fn schedule_flight(
        &self,
        caller: &Caller,
        ctx: CommandContext,
        flight: NewFlight,
    ) -> CommandResult<Outcome> {
        caller.require(&[Role::Admin])?;
        let flight_id = Uuid::now_v7();
        let schedule = flight.parse(flight_id, ctx.now)?;
        let (flight_events, seat_events) = schedule_flight(schedule).map_err(flight_error)?;
        let sealer = self.commands.sealer();
        let appends = vec![
            StreamAppend {
                stream: StreamId::new(Flight::CATEGORY, flight_id),
                expected: ExpectedVersion::NO_STREAM,
                events: encode_events(sealer, &flight_events, &ctx).await?,
            },
            StreamAppend {
                stream: StreamId::new(SeatInventory::CATEGORY, flight_id),
                expected: ExpectedVersion::NO_STREAM,
                events: encode_events(sealer, &seat_events, &ctx).await?,
            },
        ];
        self.commands
            .append(&ctx, appends, json!({ "flight_id": flight_id }))
            .await
    }

    /// Changes a cabin's fare, for bookings made from now on.
    pub async fn change_fare(
        &self,
        caller: &Caller,
        ctx: CommandContext,
        id: Uuid,
        cabin: Cabin,
        fare: Decimal,
    ) -> CommandResult<Outcome> {
        caller.require(&[Role::Admin])?;
        let now = ctx.now;
        self.flight_command(ctx, id, move |currency| {
            let fare = Money::new(fare, currency)
                .map_err(|e| CommandError::invalid("fare", e.to_string()))?;
            Ok((
                FlightCommand::ChangeFare { cabin, fare, now },
                json!({ "flight_id": id, "cabin": cabin, "fare": fare }),
            ))
        })
        .await
    }

    /// Moves a flight's departure and arrival.
    pub async fn reschedule_flight(
        &self,
        caller: &Caller,
        ctx: CommandContext,
        id: Uuid,
        departs_at: DateTime<Utc>,
        arrives_at: DateTime<Utc>,
    ) -> CommandResult<Outcome> {
        caller.require(&[Role::Admin])?;
        let now = ctx.now;
        self.flight_command(ctx, id, move |_| {
            Ok((
                FlightCommand::Reschedule {
                    departs_at,
                    arrives_at,
                    now,
                },
                json!({ "flight_id": id, "departs_at": departs_at, "arrives_at": arrives_at }),
            ))
        })
        .await
    }

    /// Cancels a flight. Its bookings are cancelled and refunded by the
    /// flight-cancellation process.
    pub async fn cancel_flight(
        &self,
        caller: &Caller,
        ctx: CommandContext,
        id: Uuid,
        reason: String,
    ) -> CommandResult<Outcome> {
        caller.require(&[Role::Admin])?;
        let now = ctx.now;
        self.flight_command(ctx, id, move |_| {
            Ok((
                FlightCommand::Cancel {
                    reason: reason.clone(),
                    now,
                },
                json!({ "flight_id": id, "status": "CANCELLED" }),
            ))
        })
        .await
    }

    /// Runs a flight command on the flight's lane; `make` builds it from
    /// the flight's currency.
    async fn flight_command<F>(
        &self,
        ctx: CommandContext,
        id: Uuid,
        make: F,
    ) -> CommandResult<Outcome>
    where
        F: Fn(Currency) -> CommandResult<(FlightCommand, Value)> + Send + Sync + 'static,
    {
        self.commands
            .lanes
            .submit(
                id,
                ctx,
                None,
                Box::new(move |flight, _seats, _booking, _| {
                    let currency = flight
                        .currency()
                        .ok_or_else(|| CommandError::not_found("flight"))?;
                    let (command, reply) = make(currency)?;
                    let events = flight.decide(command).map_err(flight_error)?;
                    Ok(Decided {
                        flight: events,
                        reply,
                        ..Decided::default()
                    })
                }),
            )
            .await
    }
}
