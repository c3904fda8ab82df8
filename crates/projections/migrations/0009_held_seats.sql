-- Held seats by flight and cabin: the flight search and the cabins of a
-- flight count the holds past their expiry (available again before their
-- HoldExpired event is projected). Without it each count reads every seat
-- of the flight; with it, only the few held ones.
CREATE INDEX rm_seats_held ON rm_seats (flight_id, cabin, hold_expires_at) WHERE status = 'HELD';
