-- Every audit read, for admins to read: who looked at what, and when.
CREATE TABLE audit_reads (
    id        bigserial   PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    actor     text        NOT NULL,   -- user:<id>, or cli:<os user>
    role      text,
    action    text        NOT NULL,   -- stream, state, events, export, verify, digest, digest_verify
    target    text        NOT NULL    -- the stream, query or digest position read
);
CREATE INDEX audit_reads_at ON audit_reads (at DESC, id DESC);

-- The key digests are signed with when BOOKING_AUDIT_KEY is not set:
-- made once, on first use, so digests stay verifiable across restarts.
CREATE TABLE audit_signing_key (
    id     boolean     PRIMARY KEY DEFAULT true CHECK (id),
    seed   bytea       NOT NULL,
    made   timestamptz NOT NULL DEFAULT now()
);
