//! The exported SDL (`schema/schema.graphql`) is the schema's: a contract
//! change is a visible diff. `UPDATE_SCHEMA=1 cargo test -p read-api --test
//! schema` rewrites the file.

use std::path::PathBuf;

#[test]
fn the_exported_sdl_matches_the_schema() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schema/schema.graphql");
    let sdl = read_api::sdl();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &sdl).unwrap();
        return;
    }
    let kept = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        kept == sdl,
        "schema/schema.graphql is out of date: run `UPDATE_SCHEMA=1 cargo test -p read-api --test schema`"
    );
}

#[test]
fn the_contract_names_are_in_the_schema() {
    let sdl = read_api::sdl();
    for needle in [
        "enum Cabin {",
        "PREMIUM_ECONOMY",
        "enum SeatStatus {",
        "enum BookingStatus {",
        "PAYMENT_PENDING",
        "enum PaymentStatus {",
        "PARTIALLY_REFUNDED",
        "type Money {",
        "amount: Decimal!",
        "type FlightConnection {",
        "searchFlights(origin: String!, destination: String!, date: Date!, cabin: Cabin, passengers: Int = 1, maxPrice: Decimal, first: Int, after: String): FlightConnection!",
        "seatMap: [SeatState!]!",
        "bookingUpdated(id: ID!): Booking!",
        "seatMapChanged(flightId: ID!): SeatChange!",
        "projections: [ProjectionStatus!]!",
        "searchItineraries(origin: String!, destination: String!, date: Date!, returnDate: Date, maxStops: Int = 1, cabin: Cabin, passengers: Int = 1, maxPrice: Decimal, sort: ItinerarySort = PRICE, first: Int, after: String",
        "): ItineraryConnection!",
        "enum ItinerarySort {",
        "type Itinerary {",
        "flights: [Flight!]!",
        "totalPrice: Money!",
        "durationMinutes: Int!",
        "stops: Int!",
        "seatsLeft: Int!",
        "myWaitlist: [WaitlistEntry!]!",
        "waitlistUpdated: [WaitlistEntry!]!",
        "enum WaitlistStatus {",
        "type WaitlistEntry {",
        "place: Int!",
        "status: WaitlistStatus!",
        "offerBookingId: ID",
        "offerExpiresAt: DateTime",
    ] {
        assert!(sdl.contains(needle), "{needle} missing from\n{sdl}");
    }
}
