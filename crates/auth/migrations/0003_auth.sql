-- The write side's credentials and refresh tokens. These are infrastructure,
-- not domain facts: they never enter the event log, and erasing a user
-- deletes their rows outright (the user stream keeps only sealed data).

-- One login per user. `email` is the normalised (trimmed, lower-cased)
-- address, so uniqueness is case-insensitive.
CREATE TABLE auth_credentials (
    email          text        PRIMARY KEY CHECK (email = lower(email)),
    user_id        uuid        NOT NULL UNIQUE,
    password_hash  text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Refresh tokens are opaque random strings; only their SHA-256 is kept.
-- Tokens rotate within a family (one per login): using a token spends it
-- (`used_at`) and issues the next one of the same family. Presenting a spent
-- token again revokes the whole family (`revoked_at`).
CREATE TABLE auth_refresh_tokens (
    token_hash  bytea       PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    user_id     uuid        NOT NULL,
    family_id   uuid        NOT NULL,
    issued_at   timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz
);

CREATE INDEX auth_refresh_tokens_family ON auth_refresh_tokens (family_id);
CREATE INDEX auth_refresh_tokens_user ON auth_refresh_tokens (user_id);
CREATE INDEX auth_refresh_tokens_expiry ON auth_refresh_tokens (expires_at);
