-- Sessions (refresh token families) that ended: logout, a reused refresh
-- token, a role change, an erasure. Every process follows this table (woken
-- by NOTIFY booking_sessions, and polling besides) and refuses the access
-- tokens of these sessions at once, without a query per request. Rows older
-- than an access token's lifetime are of no more use.
CREATE TABLE auth_revocations (
    seq bigserial PRIMARY KEY,
    session_id uuid NOT NULL,
    revoked_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX auth_revocations_time ON auth_revocations (revoked_at);
