-- The event store: streams, events, recorded commands.
--
-- Global order: every event stores the id of the transaction that wrote it
-- (`tx`, from pg_current_xact_id()). Readers page through the log ordered by
-- (tx, position) and only read events whose transaction is older than the
-- oldest transaction still running (pg_snapshot_xmin). A transaction that
-- commits late therefore can never be overtaken by a reader's cursor: until it
-- finishes, nothing written after it began is visible to readers either.
-- See docs/adr/0001-global-order-cursor.md.

CREATE TABLE es_streams (
    stream_id  text        PRIMARY KEY,
    version    bigint      NOT NULL CHECK (version >= 0),
    last_hash  bytea       NOT NULL
);

CREATE TABLE es_events (
    position        bigserial   NOT NULL,
    tx              xid8        NOT NULL DEFAULT pg_current_xact_id(),
    stream_id       text        NOT NULL,
    version         bigint      NOT NULL CHECK (version >= 1),
    event_id        uuid        NOT NULL,
    event_type      text        NOT NULL,
    schema_version  integer     NOT NULL,
    data            jsonb       NOT NULL,
    metadata        jsonb       NOT NULL,
    recorded_at     timestamptz NOT NULL,
    prev_hash       bytea       NOT NULL,
    hash            bytea       NOT NULL,
    CONSTRAINT es_events_stream_version PRIMARY KEY (stream_id, version),
    CONSTRAINT es_events_event_id UNIQUE (event_id)
);

-- The global log cursor.
CREATE UNIQUE INDEX es_events_global_order ON es_events (tx, position);

-- Commands that appended: a repeated command id returns the first outcome.
CREATE TABLE es_commands (
    command_id   uuid        PRIMARY KEY,
    fingerprint  bytea,
    outcome      jsonb       NOT NULL,
    tx           xid8        NOT NULL,
    position     bigint      NOT NULL,
    recorded_at  timestamptz NOT NULL
);

-- One round trip per append: lock (or create) each stream, check its
-- expected version, chain the hashes, insert the events and the commands.
-- Arguments are parallel arrays. p_expected: -1 any, -2 the stream must
-- exist, n >= 0 the exact current version (0 = the stream must not exist).
-- Streams must be passed in a stable (sorted) order so that concurrent
-- appends touching the same streams lock them in the same order.
-- A version mismatch returns one row with conflict = true and writes nothing.
CREATE FUNCTION es_append(
    p_streams          text[],
    p_expected         bigint[],
    p_event_stream     integer[],
    p_event_ids        uuid[],
    p_event_types      text[],
    p_schema_versions  integer[],
    p_data             jsonb[],
    p_metadata         jsonb[],
    p_content_hashes   bytea[],
    p_recorded_at      timestamptz,
    p_command_ids      uuid[],
    p_fingerprints     bytea[],
    p_outcomes         jsonb[]
) RETURNS TABLE (
    conflict        boolean,
    stream_id       text,
    expected        bigint,
    actual          bigint,
    tx              bigint,
    first_position  bigint,
    last_position   bigint
)
LANGUAGE plpgsql AS $$
DECLARE
    n_streams  integer := coalesce(array_length(p_streams, 1), 0);
    n_events   integer := coalesce(array_length(p_event_ids, 1), 0);
    versions   bigint[] := '{}';
    hashes     bytea[] := '{}';
    v          bigint;
    h          bytea;
    i          integer;
    j          integer;
    s          integer;
    pos        bigint;
    first_pos  bigint := NULL;
    last_pos   bigint := NULL;
    my_tx      xid8 := pg_current_xact_id();
BEGIN
    FOR i IN 1 .. n_streams LOOP
        SELECT st.version, st.last_hash INTO v, h
          FROM es_streams st WHERE st.stream_id = p_streams[i] FOR UPDATE;
        IF NOT FOUND THEN
            -- Create the stream's row (version 0: no events yet) and lock it.
            -- A concurrent creator makes this wait for its outcome instead of
            -- failing, so `any` never conflicts.
            INSERT INTO es_streams (stream_id, version, last_hash)
            VALUES (p_streams[i], 0, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea)
            ON CONFLICT ON CONSTRAINT es_streams_pkey DO NOTHING;
            SELECT st.version, st.last_hash INTO v, h
              FROM es_streams st WHERE st.stream_id = p_streams[i] FOR UPDATE;
        END IF;
        IF (p_expected[i] >= 0 AND p_expected[i] <> v)
           OR (p_expected[i] = -2 AND v = 0) THEN
            RETURN QUERY SELECT true, p_streams[i], p_expected[i], v, NULL::bigint, NULL::bigint, NULL::bigint;
            RETURN;
        END IF;
        versions := versions || v;
        hashes := hashes || h;
    END LOOP;

    FOR j IN 1 .. n_events LOOP
        s := p_event_stream[j];
        versions[s] := versions[s] + 1;
        h := sha256(hashes[s] || p_content_hashes[j]);
        INSERT INTO es_events (tx, stream_id, version, event_id, event_type, schema_version,
                               data, metadata, recorded_at, prev_hash, hash)
        VALUES (my_tx, p_streams[s], versions[s], p_event_ids[j], p_event_types[j], p_schema_versions[j],
                p_data[j], p_metadata[j], p_recorded_at, hashes[s], h)
        RETURNING es_events.position INTO pos;
        hashes[s] := h;
        IF first_pos IS NULL THEN first_pos := pos; END IF;
        last_pos := pos;
    END LOOP;

    FOR i IN 1 .. n_streams LOOP
        UPDATE es_streams SET version = versions[i], last_hash = hashes[i]
         WHERE es_streams.stream_id = p_streams[i] AND es_streams.version <> versions[i];
    END LOOP;

    IF coalesce(array_length(p_command_ids, 1), 0) > 0 THEN
        INSERT INTO es_commands (command_id, fingerprint, outcome, tx, position, recorded_at)
        SELECT c.id, c.fp, c.outcome, my_tx, coalesce(last_pos, 0), p_recorded_at
          FROM unnest(p_command_ids, p_fingerprints, p_outcomes) AS c(id, fp, outcome);
    END IF;

    FOR i IN 1 .. n_streams LOOP
        RETURN QUERY SELECT false, p_streams[i], p_expected[i], versions[i],
                            my_tx::text::bigint, first_pos, last_pos;
    END LOOP;
END;
$$;
