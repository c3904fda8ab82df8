-- Itinerary search (searchItineraries) asks for every flight leaving some
-- airports in a time window, whatever their destination: the first flight
-- of a trip with stops, and the middle one of two stops. rm_flights_search
-- leads with the destination after the origin, so without this index such
-- a read walks every flight ever scheduled out of the airport.
CREATE INDEX rm_flights_departures ON rm_flights (origin, departure_date, departs_at);
