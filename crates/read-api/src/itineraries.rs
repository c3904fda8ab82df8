//! Itinerary search (`searchItineraries`): trips of one or more directions
//! (one-way, round trip, multi-city), each direction a routing of up to
//! three flights, put together from the flights read model.
//!
//! # How a direction is searched
//! Stage by stage, each stage one indexed read of the flights leaving some
//! airports in a time window ([`departures`]): the first stage the flights
//! out of the origin on the day (only those to the destination when no
//! stop is allowed); each next stage the flights out of the airports the
//! open routings have reached, departing from the earliest arrival plus the
//! minimum connection time to the latest arrival plus the maximum layover
//! (the last stage only those to the destination). Routings are then joined
//! here: a connection is at the airport the last flight landed at, departs
//! at least the minimum connection time after it and at most the maximum
//! layover after it, in the same currency, and visits no airport twice.
//! A one-stop search is two reads, a two-stop search three.
//!
//! Bounds keep a search's cost bounded: each stage reads at most
//! [`STAGE_LIMIT`] flights (earliest first) and extends at most
//! [`OPEN_LIMIT`] routings. A trip of several directions combines each
//! direction's best routings (in the order asked for) so that no more than
//! [`MAX_COMBINATIONS`] trips are ranked: the first pages are exact unless
//! a direction's best routings cannot follow the previous direction's (too
//! early, another currency); deep pages of a many-legged trip may be cut.
//!
//! # What a trip is
//! Every direction after the first departs at least the minimum connection
//! time after the previous one arrives. `totalPrice` is the sum of the
//! chosen cabins' fares times the passengers, all flights in one currency
//! (mixed trips are skipped); `durationMinutes` is, per direction, first
//! departure to last arrival, summed over directions (the days spent at a
//! destination are not travel); `stops` counts connections, summed over
//! directions; `seatsLeft` is the fewest seats left over the flights.
//!
//! Ranking ([`ItinerarySort`]) is total and stable: price, duration or first
//! departure first, then the others, then the flights' ids in travel order.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use domain::values::Cabin;
use projections::model::flights::{departures, Departures, LegRow};
use rust_decimal::Decimal;
use sqlx::PgPool;
use uuid::Uuid;

/// Flights one stage of a direction reads at most.
pub const STAGE_LIMIT: i64 = 1_000;
/// Routings one stage extends at most.
pub const OPEN_LIMIT: usize = 20_000;
/// Trips of several directions ranked at most.
pub const MAX_COMBINATIONS: usize = 40_000;

/// How results are ranked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItinerarySort {
    Price,
    Duration,
    Departure,
}

/// One direction of a trip: from `origin` to `destination`, the first
/// flight departing on `date` (UTC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Direction {
    pub origin: String,
    pub destination: String,
    pub date: NaiveDate,
}

/// A validated search.
#[derive(Debug, Clone)]
pub struct Search {
    /// In travel order; at least one.
    pub directions: Vec<Direction>,
    /// Connections allowed per direction (0..=2).
    pub max_stops: usize,
    pub cabin: Option<Cabin>,
    pub passengers: i32,
    pub max_price: Option<Decimal>,
    pub airline: Option<String>,
    /// The first flight of the trip departs in this window, if given.
    pub depart_after: Option<DateTime<Utc>>,
    pub depart_before: Option<DateTime<Utc>>,
    pub min_connection: Duration,
    pub max_layover: Duration,
    pub sort: ItinerarySort,
}

/// A trip found.
#[derive(Debug, Clone)]
pub struct Itinerary {
    /// Every flight in travel order, each with the cabin it is priced in.
    pub legs: Vec<Arc<LegRow>>,
    pub total: Decimal,
    pub currency: String,
    pub duration_minutes: i64,
    pub stops: i32,
    pub seats_left: i32,
}

/// What results are ranked and paged by: (total price, duration, first
/// departure, flight ids), compared in the order [`ItinerarySort`] says.
pub type ItineraryKey = (Decimal, i64, DateTime<Utc>, Vec<Uuid>);

impl Itinerary {
    pub fn key(&self) -> ItineraryKey {
        (
            self.total,
            self.duration_minutes,
            self.legs[0].flight.departs_at,
            self.legs.iter().map(|l| l.flight.flight_id).collect(),
        )
    }
}

/// Compares two keys as `sort` ranks them.
pub fn compare(sort: ItinerarySort, a: &ItineraryKey, b: &ItineraryKey) -> Ordering {
    let (price, duration, departs) = (a.0.cmp(&b.0), a.1.cmp(&b.1), a.2.cmp(&b.2));
    match sort {
        ItinerarySort::Price => price.then(duration).then(departs),
        ItinerarySort::Duration => duration.then(price).then(departs),
        ItinerarySort::Departure => departs.then(price).then(duration),
    }
    .then_with(|| a.3.cmp(&b.3))
}

/// The trips of `search` ranked after `after` (all when `None`), at most
/// `limit`.
pub async fn search(
    pool: &PgPool,
    search: &Search,
    after: Option<&ItineraryKey>,
    limit: usize,
) -> Result<Vec<Itinerary>, sqlx::Error> {
    let directions = futures::future::try_join_all(
        search
            .directions
            .iter()
            .enumerate()
            .map(|(i, d)| routings(pool, search, d, i == 0)),
    )
    .await?;
    let mut trips: Vec<(ItineraryKey, Itinerary)> = combine(search, directions)
        .into_iter()
        .map(|t| (t.key(), t))
        .filter(|(k, _)| after.is_none_or(|a| compare(search.sort, k, a) == Ordering::Greater))
        .collect();
    trips.sort_by(|a, b| compare(search.sort, &a.0, &b.0));
    trips.truncate(limit);
    Ok(trips.into_iter().map(|(_, t)| t).collect())
}

/// One way through a direction's flights.
#[derive(Debug, Clone)]
struct Routing {
    legs: Vec<Arc<LegRow>>,
}

impl Routing {
    fn last(&self) -> &LegRow {
        self.legs.last().expect("a routing has a flight")
    }

    fn visits(&self, airport: &str) -> bool {
        self.legs[0].flight.origin == airport
            || self.legs.iter().any(|l| l.flight.destination == airport)
    }

    /// Whether `next` may follow: from the airport the last flight landed
    /// at, within the connection window, in the routing's currency, to an
    /// airport the routing has not visited.
    fn connects_to(&self, next: &LegRow, search: &Search) -> bool {
        let last = &self.last().flight;
        next.flight.origin == last.destination
            && next.flight.currency == self.legs[0].flight.currency
            && next.flight.departs_at >= last.arrives_at + search.min_connection
            && next.flight.departs_at <= last.arrives_at + search.max_layover
            && !self.visits(&next.flight.destination)
    }
}

/// The routings of one direction (see the module's docs).
async fn routings(
    pool: &PgPool,
    search: &Search,
    direction: &Direction,
    first: bool,
) -> Result<Vec<Routing>, sqlx::Error> {
    let day = direction.date.and_time(chrono::NaiveTime::MIN).and_utc();
    let (mut from, mut until) = (day, day + Duration::days(1) - Duration::microseconds(1));
    if first {
        from = from.max(search.depart_after.unwrap_or(from));
        until = until.min(search.depart_before.unwrap_or(until));
    }
    if from > until {
        return Ok(Vec::new());
    }
    let destination = [direction.destination.clone()];
    let to = |last: bool| last.then_some(&destination[..]);
    let origin = [direction.origin.clone()];
    let stage = departures(
        pool,
        &ask(search, &origin, to(search.max_stops == 0), (from, until)),
    )
    .await?;
    let mut open: Vec<Routing> = Vec::new();
    let mut done: Vec<Routing> = Vec::new();
    for leg in stage {
        let routing = Routing {
            legs: vec![Arc::new(leg)],
        };
        if routing.last().flight.destination == direction.destination {
            done.push(routing);
        } else {
            open.push(routing);
        }
    }
    for stop in 1..=search.max_stops {
        open.truncate(OPEN_LIMIT);
        let Some(window) = layover_window(&open, search) else {
            break;
        };
        let airports: Vec<String> = open
            .iter()
            .map(|r| r.last().flight.destination.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let last_stage = stop == search.max_stops;
        let stage = departures(pool, &ask(search, &airports, to(last_stage), window)).await?;
        let mut by_origin: HashMap<String, Vec<Arc<LegRow>>> = HashMap::new();
        for leg in stage {
            by_origin
                .entry(leg.flight.origin.clone())
                .or_default()
                .push(Arc::new(leg));
        }
        let mut next = Vec::new();
        for routing in &open {
            let Some(legs) = by_origin.get(routing.last().flight.destination.as_str()) else {
                continue;
            };
            for leg in legs.iter().filter(|l| routing.connects_to(l, search)) {
                let mut legs = routing.legs.clone();
                legs.push(leg.clone());
                let extended = Routing { legs };
                if extended.last().flight.destination == direction.destination {
                    done.push(extended);
                } else if !last_stage {
                    next.push(extended);
                }
            }
        }
        open = next;
    }
    Ok(done)
}

/// The flights of one stage of `search`.
fn ask<'a>(
    search: &'a Search,
    origins: &'a [String],
    destinations: Option<&'a [String]>,
    (from, until): (DateTime<Utc>, DateTime<Utc>),
) -> Departures<'a> {
    Departures {
        origins,
        destinations,
        from,
        until,
        cabin: search.cabin,
        passengers: search.passengers,
        airline: search.airline.as_deref(),
        limit: STAGE_LIMIT,
    }
}

/// When the next flights of `open` routings may depart: from the earliest
/// arrival plus the minimum connection to the latest plus the longest
/// layover.
fn layover_window(open: &[Routing], search: &Search) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let arrivals = open.iter().map(|r| r.last().flight.arrives_at);
    let earliest = arrivals.clone().min()?;
    let latest = arrivals.max()?;
    Some((
        earliest + search.min_connection,
        latest + search.max_layover,
    ))
}

/// Trips of one routing per direction, each direction departing after the
/// previous arrives (plus the minimum connection), in one currency, within
/// the price cap.
fn combine(search: &Search, mut directions: Vec<Vec<Routing>>) -> Vec<Itinerary> {
    let passengers = Decimal::from(search.passengers);
    let price = |r: &Routing| r.legs.iter().map(|l| l.fare).sum::<Decimal>() * passengers;
    let within_cap = |total: Decimal| search.max_price.is_none_or(|max| total <= max);
    if directions.len() > 1 {
        // The best of each direction, so the product stays bounded: the
        // best trips combine good directions.
        let keep = per_direction(directions.len());
        for routings in &mut directions {
            routings.retain(|r| within_cap(price(r)));
            let mut keyed: Vec<(ItineraryKey, Routing)> = routings
                .drain(..)
                .map(|r| (trip(&[&r], passengers).key(), r))
                .collect();
            keyed.sort_by(|a, b| compare(search.sort, &a.0, &b.0));
            keyed.truncate(keep);
            *routings = keyed.into_iter().map(|(_, r)| r).collect();
        }
    }
    let mut partial: Vec<Vec<&Routing>> = vec![Vec::new()];
    for routings in &directions {
        let mut next = Vec::new();
        for chosen in &partial {
            for r in routings {
                let follows = chosen.last().is_none_or(|prev| {
                    r.legs[0].flight.currency == prev.legs[0].flight.currency
                        && r.legs[0].flight.departs_at
                            >= prev.last().flight.arrives_at + search.min_connection
                });
                if follows {
                    let mut chosen = chosen.clone();
                    chosen.push(r);
                    next.push(chosen);
                }
            }
        }
        partial = next;
    }
    partial
        .iter()
        .map(|routings| trip(routings, passengers))
        .filter(|t| within_cap(t.total))
        .collect()
}

/// How many routings of each of `n` directions are combined.
fn per_direction(n: usize) -> usize {
    let mut keep = MAX_COMBINATIONS;
    for k in 1..=MAX_COMBINATIONS {
        if k.checked_pow(n as u32).is_none_or(|p| p > MAX_COMBINATIONS) {
            keep = k - 1;
            break;
        }
    }
    keep.max(1)
}

/// The trip flying `routings` in order.
fn trip(routings: &[&Routing], passengers: Decimal) -> Itinerary {
    let legs: Vec<Arc<LegRow>> = routings.iter().flat_map(|r| r.legs.clone()).collect();
    Itinerary {
        total: legs.iter().map(|l| l.fare).sum::<Decimal>() * passengers,
        currency: legs[0].flight.currency.clone(),
        duration_minutes: routings
            .iter()
            .map(|r| (r.last().flight.arrives_at - r.legs[0].flight.departs_at).num_minutes())
            .sum(),
        stops: routings.iter().map(|r| r.legs.len() as i32 - 1).sum(),
        seats_left: legs.iter().map(|l| l.seats_left).min().unwrap_or(0),
        legs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use projections::model::flights::FlightRow;

    fn leg(from: &str, to: &str, departs: &str, hours: i64, fare: i64, seats: i32) -> Arc<LegRow> {
        let departs_at: DateTime<Utc> = departs.parse().unwrap();
        Arc::new(LegRow {
            flight: FlightRow {
                flight_id: Uuid::now_v7(),
                flight_number: "XX1".into(),
                airline: "Test Air".into(),
                origin: from.into(),
                destination: to.into(),
                departs_at,
                arrives_at: departs_at + Duration::hours(hours),
                currency: "USD".into(),
                cancelled: false,
                cancel_reason: None,
                total_seats: 100,
                price: Some(Decimal::from(fare)),
                cabin_names: None,
                cabin_fares: None,
                cabin_totals: None,
                cabin_available: None,
            },
            cabin: Cabin::Economy,
            fare: Decimal::from(fare),
            seats_left: seats,
        })
    }

    fn search(directions: usize, sort: ItinerarySort) -> Search {
        let d = Direction {
            origin: "LHR".into(),
            destination: "JFK".into(),
            date: NaiveDate::from_ymd_opt(2030, 6, 1).unwrap(),
        };
        Search {
            directions: vec![d; directions],
            max_stops: 1,
            cabin: None,
            passengers: 2,
            max_price: None,
            airline: None,
            depart_after: None,
            depart_before: None,
            min_connection: Duration::minutes(45),
            max_layover: Duration::hours(24),
            sort,
        }
    }

    #[test]
    fn a_connection_is_at_the_same_airport_after_the_minimum_connection_time() {
        let s = search(1, ItinerarySort::Price);
        let first = Routing {
            legs: vec![leg("LHR", "CDG", "2030-06-01T08:00:00Z", 1, 100, 9)],
        };
        assert!(first.connects_to(&leg("CDG", "JFK", "2030-06-01T09:45:00Z", 8, 1, 9), &s));
        assert!(!first.connects_to(&leg("CDG", "JFK", "2030-06-01T09:44:00Z", 8, 1, 9), &s));
        assert!(!first.connects_to(&leg("ORY", "JFK", "2030-06-01T12:00:00Z", 8, 1, 9), &s));
        assert!(!first.connects_to(&leg("CDG", "JFK", "2030-06-02T09:01:00Z", 8, 1, 9), &s));
        assert!(!first.connects_to(&leg("CDG", "LHR", "2030-06-01T12:00:00Z", 1, 1, 9), &s));
    }

    #[test]
    fn a_round_trip_sums_prices_durations_and_stops_and_takes_the_fewest_seats() {
        let s = search(2, ItinerarySort::Price);
        let out = Routing {
            legs: vec![
                leg("LHR", "CDG", "2030-06-01T08:00:00Z", 1, 100, 9),
                leg("CDG", "JFK", "2030-06-01T10:00:00Z", 8, 300, 3),
            ],
        };
        let back = Routing {
            legs: vec![leg("JFK", "LHR", "2030-06-08T20:00:00Z", 7, 400, 5)],
        };
        let trips = combine(&s, vec![vec![out.clone()], vec![back.clone()]]);
        assert_eq!(trips.len(), 1);
        let t = &trips[0];
        assert_eq!(t.total, Decimal::from(1600));
        assert_eq!(t.duration_minutes, 10 * 60 + 7 * 60);
        assert_eq!(t.stops, 1);
        assert_eq!(t.seats_left, 3);
        assert_eq!(t.legs.len(), 3);
        // A return before the outbound lands is no trip.
        let early = Routing {
            legs: vec![leg("JFK", "LHR", "2030-06-01T18:30:00Z", 7, 1, 5)],
        };
        assert!(combine(&s, vec![vec![out], vec![early]]).is_empty());
    }

    #[test]
    fn every_sort_is_total_and_falls_back_to_the_flight_ids() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let k1 = (Decimal::from(100), 600, at("2030-06-01T10:00:00Z"), vec![a]);
        let k2 = (Decimal::from(200), 300, at("2030-06-01T09:00:00Z"), vec![b]);
        assert_eq!(compare(ItinerarySort::Price, &k1, &k2), Ordering::Less);
        assert_eq!(
            compare(ItinerarySort::Duration, &k1, &k2),
            Ordering::Greater
        );
        assert_eq!(
            compare(ItinerarySort::Departure, &k1, &k2),
            Ordering::Greater
        );
        let k3 = (k1.0, k1.1, k1.2, vec![b]);
        assert_eq!(compare(ItinerarySort::Price, &k1, &k3), Ordering::Less);
    }

    #[test]
    fn combinations_stay_bounded() {
        assert_eq!(per_direction(1), MAX_COMBINATIONS);
        assert_eq!(per_direction(2), 200);
        assert!(per_direction(6).pow(6) <= MAX_COMBINATIONS);
    }
}
