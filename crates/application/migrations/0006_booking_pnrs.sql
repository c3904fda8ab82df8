-- Booking references are 6 random characters (about 10^9 of them): two
-- bookings drawing the same one becomes likely after tens of thousands of
-- bookings. Every code handed out is registered here first; a clash is
-- simply drawn again. Each process reserves codes in blocks and hands them
-- out from memory, so a booking costs no extra round trip; codes reserved by
-- a process that stopped, or whose booking was refused, stay unused.
CREATE TABLE booking_pnrs (
    pnr          text        PRIMARY KEY,
    reserved_at  timestamptz NOT NULL DEFAULT now()
);
