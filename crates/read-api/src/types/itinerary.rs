//! Itineraries: trips of one or more flights ([`crate::itineraries`]).

use async_graphql::{Enum, InputObject, Object};

use super::{Cabin, Date, Flight, Money};
use crate::itineraries;

/// A trip: one routing per direction (outbound, then return; or each leg
/// of a multi-city trip), flights in travel order.
pub struct Itinerary(pub itineraries::Itinerary);

#[Object]
impl Itinerary {
    /// Every flight, in travel order.
    async fn flights(&self) -> Vec<Flight> {
        self.0
            .legs
            .iter()
            .map(|l| Flight(l.flight.clone()))
            .collect()
    }
    /// The cabin each flight is priced in, in the order of `flights`: the
    /// cabin asked for, or the cheapest with enough seats.
    async fn cabins(&self) -> Vec<Cabin> {
        self.0.legs.iter().map(|l| l.cabin.into()).collect()
    }
    /// The fares of those cabins times the passengers (adults).
    async fn total_price(&self) -> Money {
        Money::new(self.0.total, &self.0.currency)
    }
    /// First departure to last arrival, summed over the directions of a
    /// round trip or a multi-city trip (the time spent at a destination is
    /// not counted).
    async fn duration_minutes(&self) -> i32 {
        self.0.duration_minutes.clamp(0, i32::MAX as i64) as i32
    }
    /// Connections, summed over directions (turning back at a destination
    /// is not a stop).
    async fn stops(&self) -> i32 {
        self.0.stops
    }
    /// The fewest seats available over its flights, in their cabins.
    async fn seats_left(&self) -> i32 {
        self.0.seats_left
    }
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ItinerarySort {
    /// Cheapest first, then shortest, then earliest.
    Price,
    /// Shortest first, then cheapest, then earliest.
    Duration,
    /// Earliest first departure first, then cheapest, then shortest.
    Departure,
}

impl From<ItinerarySort> for itineraries::ItinerarySort {
    fn from(s: ItinerarySort) -> Self {
        match s {
            ItinerarySort::Price => Self::Price,
            ItinerarySort::Duration => Self::Duration,
            ItinerarySort::Departure => Self::Departure,
        }
    }
}

/// A further leg of a multi-city trip: its first flight departs from
/// `origin` on `date` (UTC), its last lands at `destination`.
#[derive(InputObject, Debug, Clone)]
pub struct ItineraryLegInput {
    pub origin: String,
    pub destination: String,
    pub date: Date,
}
