-- The further flights of a booking of several flights (an itinerary), in
-- the order flown; `flight_id` is its first. A cancelled flight's saga
-- finds every booking that flies it, not only those that leave on it.
ALTER TABLE sagas ADD COLUMN connections uuid[] NOT NULL DEFAULT '{}';
CREATE INDEX sagas_connections ON sagas USING gin (connections)
    WHERE kind = 'fulfilment' AND connections <> '{}';
