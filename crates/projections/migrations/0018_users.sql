-- Accounts as admins find them (`users(search, role)`) and as `me` shows
-- them. The personal columns (email, full_name, phone) hold plaintext read
-- from the sealed `personal` field and are set to NULL when the user is
-- erased (or read as erased at a replay, once the key is shredded), like
-- passengers' names in rm_booking_passengers.
CREATE TABLE rm_users (
    user_id            uuid        PRIMARY KEY,
    email              text,
    full_name          text,
    phone              text,
    role               text        NOT NULL,
    -- ACTIVE, SUSPENDED or ERASED (projections::model::users::UserStatus).
    status             text        NOT NULL,
    suspension_reason  text,
    registered_at      timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL
);
-- The admin list pages newest first, optionally by role.
CREATE INDEX rm_users_registered ON rm_users (registered_at DESC, user_id DESC);
CREATE INDEX rm_users_role ON rm_users (role, registered_at DESC, user_id DESC);

INSERT INTO projection_checkpoints (name) VALUES ('users') ON CONFLICT DO NOTHING;
