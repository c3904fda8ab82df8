-- The further flights of a booking of several flights (an itinerary), in
-- the order flown (`ordinal` 1 is its second flight): each passenger's
-- seat, cabin, fare and ticket on each. The first flight's are in
-- rm_booking_passengers, as for a booking of one flight.
CREATE TABLE rm_booking_connections (
    booking_id uuid NOT NULL,
    flight_id uuid NOT NULL,
    ordinal int2 NOT NULL,
    passenger_id uuid NOT NULL,
    seat text,
    cabin text NOT NULL,
    fare numeric NOT NULL,
    ticket_number text,
    PRIMARY KEY (booking_id, flight_id, passenger_id)
);
CREATE INDEX rm_booking_connections_flight ON rm_booking_connections (flight_id);
