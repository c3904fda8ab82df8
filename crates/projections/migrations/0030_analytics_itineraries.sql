-- A booking of several flights (an itinerary): its flights in the order
-- flown and each one's part of its fares (fractions adding up to 1). Its
-- captures and refunds are split between the flights' airlines and routes
-- by these parts. Both empty for a booking of one flight.
ALTER TABLE rm_an_bookings
    ADD COLUMN flights uuid[] NOT NULL DEFAULT '{}',
    ADD COLUMN shares numeric[] NOT NULL DEFAULT '{}';
