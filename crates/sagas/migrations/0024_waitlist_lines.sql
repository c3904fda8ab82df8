-- The waiting-list process manager's rows: one per flight that has had a
-- waiting list. `open_entries` counts entries waiting or holding an offer,
-- as the log says (kept by the manager's follower in the same transaction
-- as its checkpoint). A seat coming back on a flight with open entries sets
-- `next_run_at`: a durable wake-up that survives a restart; `wakes` tells a
-- worker that finished serving whether another wake-up came in meanwhile.
CREATE TABLE waitlist_lines (
    flight_id     uuid        PRIMARY KEY,
    open_entries  integer     NOT NULL DEFAULT 0,
    wakes         bigint      NOT NULL DEFAULT 0,
    next_run_at   timestamptz,
    attempts      integer     NOT NULL DEFAULT 0,
    last_error    text,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX waitlist_lines_due ON waitlist_lines (next_run_at) WHERE next_run_at IS NOT NULL;

-- No waiting-list event exists before this migration: the follower starts
-- at the head of the log instead of reading the whole history for nothing.
INSERT INTO projection_checkpoints (name, tx, seq)
SELECT 'waitlist_offers', COALESCE(h.tx, 0), COALESCE(h.position, 0)
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (
    SELECT tx::text::bigint AS tx, position FROM es_events ORDER BY tx DESC, position DESC LIMIT 1
) AS h ON true
ON CONFLICT (name) DO NOTHING;
