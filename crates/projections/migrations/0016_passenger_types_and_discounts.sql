-- Trips (issue 16): passenger types and discount codes in the bookings
-- read model.
--
-- An infant sits on an adult's lap: no seat of their own, the adult named
-- by travels_with. Rows from before passenger types are adults.
ALTER TABLE rm_booking_passengers
    ALTER COLUMN seat DROP NOT NULL,
    ADD COLUMN passenger_type text NOT NULL DEFAULT 'adult'
        CHECK (passenger_type IN ('adult', 'child', 'infant')),
    ADD COLUMN travels_with uuid;

-- What a discount code took off the fares (zero without one), and the code.
ALTER TABLE rm_bookings
    ADD COLUMN discount numeric NOT NULL DEFAULT 0,
    ADD COLUMN discount_code text;
