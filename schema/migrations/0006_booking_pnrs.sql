-- Booking references are 6 random characters (about 10^9 of them): two
-- bookings drawing the same one becomes likely after tens of thousands of
-- bookings. The write side reserves a PNR here before it appends the booking
-- and draws again on a clash. A reservation whose booking was then refused
-- (a taken seat) stays behind: it only takes one of the 10^9 codes.
CREATE TABLE booking_pnrs (
    pnr          text        PRIMARY KEY,
    booking_id   uuid        NOT NULL UNIQUE,
    reserved_at  timestamptz NOT NULL DEFAULT now()
);
