//! Bookings, passengers, tickets.

use async_graphql::{Context, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use projections::model::bookings::BookingRow;

use super::{id, loader, BookingStatus, Cabin, Flight, Money, PassengerType, Payment};
use crate::error::OrInternal;
use crate::loaders::{ConnectionSeat, ConnectionsKey, FlightKey, PassengersKey, PaymentKey};

pub struct Booking(pub BookingRow);

#[Object]
impl Booking {
    async fn id(&self) -> ID {
        id(self.0.booking_id)
    }
    async fn pnr(&self) -> &str {
        &self.0.pnr
    }
    async fn status(&self) -> BookingStatus {
        self.0.status.into()
    }
    async fn flight_id(&self) -> ID {
        id(self.0.flight_id)
    }
    async fn flight(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Flight>> {
        Ok(loader(ctx)
            .load_one(FlightKey(self.0.flight_id))
            .await
            .or_internal()?
            .map(Flight))
    }
    async fn customer_id(&self) -> ID {
        id(self.0.customer_id)
    }
    /// Who made it: the customer, or the agent who booked for them.
    async fn created_by(&self) -> ID {
        id(self.0.created_by)
    }
    async fn passengers(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Passenger>> {
        Ok(loader(ctx)
            .load_one(PassengersKey(self.0.booking_id))
            .await
            .or_internal()?
            .unwrap_or_default())
    }
    async fn seats(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<String>> {
        Ok(self
            .passengers(ctx)
            .await?
            .into_iter()
            .filter(|p| p.passenger_type != PassengerType::Infant)
            .map(|p| p.seat)
            .collect())
    }
    /// What the passengers pay: their fares less `discount`.
    async fn total(&self) -> Money {
        Money::new(self.0.total, &self.0.currency)
    }
    /// What a discount code took off the fares (zero without one).
    async fn discount(&self) -> Money {
        Money::new(self.0.discount, &self.0.currency)
    }
    /// The discount code the booking used.
    async fn discount_code(&self) -> Option<&str> {
        self.0.discount_code.as_deref()
    }
    /// The flights of the booking in travel order, each with its seats.
    async fn segments(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Segment>> {
        let mut segments = vec![Segment {
            flight_id: self.0.flight_id,
            seats: self.seats(ctx).await?,
        }];
        for row in self.connections(ctx).await? {
            let seat = row.own_seat;
            match segments.last_mut() {
                Some(last) if last.flight_id == row.flight_id => last.seats.extend(seat),
                _ => segments.push(Segment {
                    flight_id: row.flight_id,
                    seats: seat.into_iter().collect(),
                }),
            }
        }
        Ok(segments)
    }
    /// What a cancellation refunded.
    async fn refund(&self) -> Option<Money> {
        self.0.refund.map(|r| Money::new(r, &self.0.currency))
    }
    /// Why it failed or was cancelled.
    async fn reason(&self) -> Option<&str> {
        self.0.reason.as_deref()
    }
    /// Until when the seats are held; null once paid, cancelled or lapsed.
    async fn hold_expires_at(&self) -> Option<DateTime<Utc>> {
        use domain::booking::BookingStatus as S;
        matches!(self.0.status, S::Held | S::PaymentPending).then_some(self.0.hold_expires_at)
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    async fn payment(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Payment>> {
        let Some(payment) = self.0.payment_id else {
            return Ok(None);
        };
        loader(ctx)
            .load_one(PaymentKey(payment))
            .await
            .or_internal()
    }
    /// One per passenger per flight, flight by flight.
    async fn tickets(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Ticket>> {
        let first = id(self.0.flight_id);
        let mut tickets: Vec<Ticket> = self
            .passengers(ctx)
            .await?
            .into_iter()
            .filter_map(|p| {
                p.ticket_number.map(|number| Ticket {
                    number,
                    passenger_id: p.id,
                    seat: p.seat,
                    flight_id: first.clone(),
                })
            })
            .collect();
        tickets.extend(self.connections(ctx).await?.into_iter().filter_map(|c| {
            c.ticket_number.map(|number| Ticket {
                number,
                passenger_id: id(c.passenger_id),
                seat: c.seat,
                flight_id: id(c.flight_id),
            })
        }));
        Ok(tickets)
    }
}

impl Booking {
    /// An itinerary's further flights, as the read model has them.
    async fn connections(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ConnectionSeat>> {
        Ok(loader(ctx)
            .load_one(ConnectionsKey(self.0.booking_id))
            .await?
            .unwrap_or_default())
    }
}

#[derive(SimpleObject, Debug, Clone)]
pub struct Passenger {
    pub id: ID,
    /// Empty once the customer's personal data is erased (see `erased`).
    pub first_name: String,
    pub last_name: String,
    pub erased: bool,
    #[graphql(name = "type")]
    pub passenger_type: PassengerType,
    /// An infant's: the seat of the adult whose lap they sit on.
    pub seat: String,
    /// The adult an infant travels with.
    pub travels_with: Option<ID>,
    pub cabin: Cabin,
    pub fare: Money,
    pub ticket_number: Option<String>,
}

/// One flight of a booking.
pub struct Segment {
    flight_id: uuid::Uuid,
    seats: Vec<String>,
}

#[Object]
impl Segment {
    async fn flight_id(&self) -> ID {
        id(self.flight_id)
    }
    async fn flight(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Flight>> {
        Ok(loader(ctx)
            .load_one(FlightKey(self.flight_id))
            .await
            .or_internal()?
            .map(Flight))
    }
    async fn seats(&self) -> &[String] {
        &self.seats
    }
}

#[derive(SimpleObject, Debug, Clone)]
pub struct Ticket {
    pub number: String,
    pub passenger_id: ID,
    pub seat: String,
    /// The flight it is for: an itinerary has a ticket per passenger per
    /// flight.
    pub flight_id: ID,
}
