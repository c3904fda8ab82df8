-- Which account each password-reset request belongs to. The mailed token
-- names only the request (`token_id`); this row leads from it to the user's
-- stream, where `PasswordResetRequested` decides whether it is still good.
-- Rows are written before the event, so a crash between the two leaves a
-- row no token can use (the stream never heard of it).
CREATE TABLE auth_reset_requests (
    token_id     uuid        PRIMARY KEY,
    user_id      uuid        NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX auth_reset_requests_user ON auth_reset_requests (user_id);
