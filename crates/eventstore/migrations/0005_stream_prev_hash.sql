-- The one-event append fast path (see PgEventStore::append_in) locks,
-- checks and moves a stream's head in a single UPDATE. PostgreSQL 15 cannot
-- return a column's old value from an UPDATE, so the statement copies the
-- old head hash here and returns it: it is the new event's previous hash.
-- Only meaningful right after such an update; nothing else reads it.
ALTER TABLE es_streams ADD COLUMN prev_hash bytea;
