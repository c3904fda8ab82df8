-- Group commit in one round trip: several independent appends, each run by
-- es_append in a subtransaction of its own (a BEGIN ... EXCEPTION block), so
-- that a failure of one (a unique violation: a command id or an event id
-- already stored) undoes that append alone and is reported for it, while
-- the others go on. Called by the store's batcher, inside the transaction it
-- commits once for all of them (see crates/eventstore/src/batch.rs).
--
-- Arguments are p_append (per stream) and p_command_append (per command),
-- the 1-based append each belongs to, then es_append's parallel arrays for
-- all the appends together. An append's streams and events are
-- contiguous and in its order; p_event_stream indexes the whole p_streams.
-- Returns es_append's rows, each with its append number, or one row per
-- failed append with the error's SQLSTATE, constraint and message.

CREATE FUNCTION es_append_batch(
    p_append           integer[],
    p_command_append   integer[],
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
    append_no        integer,
    conflict         boolean,
    stream_id        text,
    expected         bigint,
    actual           bigint,
    tx               bigint,
    first_position   bigint,
    last_position    bigint,
    error_state      text,
    error_constraint text,
    error_message    text
)
LANGUAGE plpgsql AS $$
DECLARE
    n_appends integer := coalesce((SELECT max(x) FROM unnest(p_append) x), 0);
    n_streams integer := coalesce(array_length(p_streams, 1), 0);
    n_events  integer := coalesce(array_length(p_event_ids, 1), 0);
    n_cmds    integer := coalesce(array_length(p_command_ids, 1), 0);
    a   integer;
    s0  integer := 1;  -- the append's first stream
    s1  integer;       -- its last
    e0  integer := 1;  -- its first event
    e1  integer;
    c0  integer := 1;  -- its first command
    c1  integer;
    st  text;
    con text;
    msg text;
BEGIN
    FOR a IN 1 .. n_appends LOOP
        s1 := s0 - 1;
        WHILE s1 < n_streams AND p_append[s1 + 1] = a LOOP s1 := s1 + 1; END LOOP;
        e1 := e0 - 1;
        WHILE e1 < n_events AND p_event_stream[e1 + 1] BETWEEN s0 AND s1 LOOP e1 := e1 + 1; END LOOP;
        c1 := c0 - 1;
        WHILE c1 < n_cmds AND p_command_append[c1 + 1] = a LOOP c1 := c1 + 1; END LOOP;
        BEGIN
            RETURN QUERY
            SELECT a, r.conflict, r.stream_id, r.expected, r.actual, r.tx,
                   r.first_position, r.last_position, NULL::text, NULL::text, NULL::text
              FROM es_append(
                p_streams[s0:s1], p_expected[s0:s1],
                -- es_append numbers the append's streams from 1.
                ARRAY(SELECT x - s0 + 1 FROM unnest(p_event_stream[e0:e1]) x),
                coalesce(p_event_ids[e0:e1], '{}'), coalesce(p_event_types[e0:e1], '{}'),
                coalesce(p_schema_versions[e0:e1], '{}'), coalesce(p_data[e0:e1], '{}'),
                coalesce(p_metadata[e0:e1], '{}'), coalesce(p_content_hashes[e0:e1], '{}'),
                p_recorded_at,
                coalesce(p_command_ids[c0:c1], '{}'), coalesce(p_fingerprints[c0:c1], '{}'),
                coalesce(p_outcomes[c0:c1], '{}')) r;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, con = CONSTRAINT_NAME,
                                    msg = MESSAGE_TEXT;
            RETURN QUERY SELECT a, NULL::boolean, NULL::text, NULL::bigint, NULL::bigint,
                                NULL::bigint, NULL::bigint, NULL::bigint, st, con, msg;
        END;
        s0 := s1 + 1;
        e0 := e1 + 1;
        c0 := c1 + 1;
    END LOOP;
END;
$$;
