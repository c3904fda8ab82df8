-- The admin `sagas` query (crates/read-api) lists sagas newest first, by
-- the keyset (created_at, saga_id), optionally of one status. Saga ids are
-- derived (UUID v5), not time-ordered, so 0007's (status, saga_id) cannot
-- serve that order; this index replaces it (nothing else reads by it) so
-- the table, updated at every saga step, keeps the same number of indexes
-- on status. A second index serves the list without a status.
DROP INDEX IF EXISTS sagas_by_status;
CREATE INDEX sagas_by_status_newest ON sagas (status, created_at DESC, saga_id DESC);
CREATE INDEX sagas_newest ON sagas (created_at DESC, saga_id DESC);
