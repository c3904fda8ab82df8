-- An itinerary's further flights: a customer is told of a change to any
-- flight of their booking, not only its first.
ALTER TABLE notification_bookings ADD COLUMN connections uuid[] NOT NULL DEFAULT '{}';
