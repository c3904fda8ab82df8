-- Projector `waitlist`: the entries of the flights' waiting lists
-- (`myWaitlist`, `waitlistUpdated`). The line itself lives in the seat
-- inventory stream (`seats-<flight_id>`); this is what a customer reads of it.
CREATE TABLE rm_waitlist_entries (
    entry_id          uuid        PRIMARY KEY,
    flight_id         uuid        NOT NULL,
    cabin             text        NOT NULL,   -- first | business | premium_economy | economy
    customer_id       uuid        NOT NULL,
    -- Seats the party needs: its passengers but infants.
    seats             integer     NOT NULL,
    passengers        integer     NOT NULL,
    -- WAITING | OFFERED | ACCEPTED | LAPSED | WITHDRAWN (domain::waitlist::WaitlistStatus).
    status            text        NOT NULL,
    -- The order in line: the global sequence number (`seq` of the position)
    -- of the WaitlistJoined event. Appends to one stream lock it first, so
    -- within a flight this follows the stream's order, as the domain's line.
    joined_position   bigint      NOT NULL,
    joined_at         timestamptz NOT NULL,
    -- The HELD booking of the offer and when its hold runs out.
    offer_booking_id  uuid,
    offer_expires_at  timestamptz,
    -- recorded_at of the last event that changed the entry.
    updated_at        timestamptz NOT NULL
);
-- myWaitlist: a customer's entries.
CREATE INDEX rm_waitlist_entries_customer ON rm_waitlist_entries (customer_id);
-- The place in line: the waiting entries of a cabin ahead of one.
CREATE INDEX rm_waitlist_entries_line ON rm_waitlist_entries (flight_id, cabin, status, joined_position);

-- Present from the start, so that read-your-writes (`X-Read-After`) waits
-- for this projector too before it has run once.
INSERT INTO projection_checkpoints (name) VALUES ('waitlist') ON CONFLICT DO NOTHING;
