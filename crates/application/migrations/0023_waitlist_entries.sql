-- Which flight a waiting-list entry waits on. The entry itself lives in the
-- flight's seat inventory stream; `DELETE /waitlist/{entry_id}` names only
-- the entry, and this is how the command finds its lane without waiting for
-- a read model. A row is written before the join is appended: a row whose
-- join was refused points at a flight that has no such entry, which the
-- domain answers as unknown.
CREATE TABLE waitlist_entry_flights (
    entry_id     uuid        PRIMARY KEY,
    flight_id    uuid        NOT NULL,
    customer_id  uuid        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
