-- The notifier: mails and webhooks written from the log.
--
-- Its inbox (checkpoint `notifications`) follows the log and, in the same
-- transaction as the checkpoint, writes one row per message to send
-- (`notification_deliveries`); workers lease due rows, send them and mark
-- them. So nothing is queued for a command that did not commit, nothing
-- committed is left unqueued, and a message sent just before a crash is
-- sent again under the same delivery id, which the receiver dedupes by
-- (`Booking-Delivery` header, mail `Message-ID`).

-- Endpoints admins registered. The secret signs every delivery; it is
-- shown once, at registration.
CREATE TABLE webhooks (
    webhook_id  uuid        PRIMARY KEY,
    url         text        NOT NULL,
    events      text[]      NOT NULL,
    secret      text        NOT NULL,
    created_by  uuid        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- What the inbox needs to know of flights and bookings to address and
-- time a message, kept from the log itself so it is never behind it.
CREATE TABLE notification_flights (
    flight_id      uuid        PRIMARY KEY,
    flight_number  text        NOT NULL,
    origin         text        NOT NULL,
    destination    text        NOT NULL,
    departs_at     timestamptz NOT NULL
);

CREATE TABLE notification_bookings (
    booking_id   uuid PRIMARY KEY,
    customer_id  uuid NOT NULL,
    flight_id    uuid NOT NULL,
    pnr          text NOT NULL,
    -- Still to fly (held, confirmed or ticketed): told of flight changes.
    live         boolean NOT NULL DEFAULT true
);
CREATE INDEX notification_bookings_flight ON notification_bookings (flight_id) WHERE live;

-- One message to one recipient: an email to a user, or a POST to a webhook.
CREATE TABLE notification_deliveries (
    delivery_id      uuid        PRIMARY KEY,
    -- booking.ticketed, booking.reminder, ..., account.password_reset, account.verify_email
    event_type       text        NOT NULL,
    channel          text        NOT NULL CHECK (channel IN ('email', 'webhook')),
    webhook_id       uuid        REFERENCES webhooks,
    -- The addressee of an email (looked up when sending: an erased user
    -- gets nothing).
    user_id          uuid,
    booking_id       uuid,
    flight_id        uuid,
    -- The log position of the event: a mail is written from the read
    -- models once they have reached it.
    position         text        NOT NULL,
    occurred_at      timestamptz NOT NULL,
    -- The facts of the event the message tells (a webhook's `data`).
    data             jsonb       NOT NULL,
    -- PENDING (to send), DELIVERED, DEAD (retries ran out) or SKIPPED
    -- (nothing to send any more: an erased user, a cancelled booking's
    -- reminder).
    status           text        NOT NULL DEFAULT 'PENDING'
                     CHECK (status IN ('PENDING', 'DELIVERED', 'DEAD', 'SKIPPED')),
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL,
    leased_until     timestamptz,
    last_error       text,
    delivered_at     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((channel = 'webhook') = (webhook_id IS NOT NULL))
);
CREATE INDEX notification_deliveries_due ON notification_deliveries (next_attempt_at)
    WHERE status = 'PENDING';
CREATE INDEX notification_deliveries_webhook ON notification_deliveries (webhook_id, created_at DESC)
    WHERE webhook_id IS NOT NULL;
CREATE INDEX notification_deliveries_reminders ON notification_deliveries (flight_id)
    WHERE event_type = 'booking.reminder' AND status = 'PENDING';
CREATE INDEX notification_deliveries_booking ON notification_deliveries (booking_id)
    WHERE event_type = 'booking.reminder' AND status = 'PENDING';

-- The notifier starts at the head of the log it is installed on: an
-- existing deployment that upgrades does not mail its whole history.
INSERT INTO projection_checkpoints (name, tx, seq)
SELECT 'notifications', COALESCE(h.tx, 0), COALESCE(h.position, 0)
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (
    SELECT tx::text::bigint AS tx, position FROM es_events ORDER BY tx DESC, position DESC LIMIT 1
) AS h ON true
ON CONFLICT (name) DO NOTHING;
