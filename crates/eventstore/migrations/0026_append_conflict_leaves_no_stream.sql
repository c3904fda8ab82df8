-- es_append answered a version conflict without raising, after creating
-- the rows of the new streams named before the conflicting one: when the
-- caller committed anyway (es_append_batch commits the other appends of
-- its batch), a new booking's stream was left at version 0 with no events.
-- The crash test found one after a restart, when lanes conflict on stale
-- state. Same function; a conflict now removes the rows it created.
CREATE OR REPLACE FUNCTION es_append(
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
    created    text[] := '{}';
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
            IF FOUND THEN
                created := created || p_streams[i];
            END IF;
            SELECT st.version, st.last_hash INTO v, h
              FROM es_streams st WHERE st.stream_id = p_streams[i] FOR UPDATE;
        END IF;
        IF (p_expected[i] >= 0 AND p_expected[i] <> v)
           OR (p_expected[i] = -2 AND v = 0) THEN
            -- A conflict is an answer, not an error: the caller's transaction
            -- may commit. The rows this call created for new streams must
            -- not outlive it, or an empty stream (version 0, no events)
            -- would stand in the log for a stream nobody wrote.
            DELETE FROM es_streams
             WHERE es_streams.stream_id = ANY(created) AND es_streams.version = 0;
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
