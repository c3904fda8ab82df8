-- Read models: the tables projectors write and the GraphQL API reads.
--
-- Every projector owns its tables outright (no other writer, no foreign keys
-- between read models) and keeps its checkpoint in `projection_checkpoints`,
-- updated in the same transaction as its writes. A rebuild copies a
-- projector's tables (CREATE TABLE ... (LIKE ... INCLUDING ALL)) into a
-- schema of its own, replays the log there and swaps them in; so no column
-- here may use a sequence, and indexes keep the names given here (the swap
-- renames the copies back). Times written come from events, never now(), so
-- a rebuild produces the same rows as the incremental run.

-- One row per projector. The cursor is the position (tx, seq) of the last
-- event the projector has seen (whether or not it cared about it).
CREATE TABLE projection_checkpoints (
    name              text        PRIMARY KEY,
    tx                bigint      NOT NULL DEFAULT 0,
    seq               bigint      NOT NULL DEFAULT 0,
    -- recorded_at of the last event seen: "seconds behind" is measured from it.
    last_recorded_at  timestamptz,
    events_seen       bigint      NOT NULL DEFAULT 0,
    rebuilt_at        timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now()
);

---------------------------------------------------------------- flights
-- Projector `flights`: flight search, cabins and the seat map.

CREATE TABLE rm_flights (
    flight_id        uuid        PRIMARY KEY,
    flight_number    text        NOT NULL,
    airline          text        NOT NULL,
    origin           text        NOT NULL,
    destination      text        NOT NULL,
    departs_at       timestamptz NOT NULL,
    arrives_at       timestamptz NOT NULL,
    -- UTC date of departs_at: what searchFlights(date:) matches.
    departure_date   date        NOT NULL,
    currency         text        NOT NULL,
    cancelled        boolean     NOT NULL DEFAULT false,
    cancel_reason    text,
    -- Counts by recorded seat state. A hold that lapsed without a
    -- HoldExpired event yet still counts as held (see rm_seats).
    total_seats      integer     NOT NULL,
    available_seats  integer     NOT NULL,
    held_seats       integer     NOT NULL DEFAULT 0,
    sold_seats       integer     NOT NULL DEFAULT 0,
    scheduled_at     timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);
-- searchFlights: route + date, ordered by departure, cursor (departs_at, flight_id).
CREATE INDEX rm_flights_search ON rm_flights (origin, destination, departure_date, departs_at, flight_id);
CREATE INDEX rm_flights_airline ON rm_flights (airline, departs_at);

CREATE TABLE rm_flight_cabins (
    flight_id        uuid        NOT NULL,
    cabin            text        NOT NULL,   -- first | business | premium_economy | economy
    fare             numeric     NOT NULL,
    currency         text        NOT NULL,
    total_seats      integer     NOT NULL,
    available_seats  integer     NOT NULL,
    held_seats       integer     NOT NULL DEFAULT 0,
    sold_seats       integer     NOT NULL DEFAULT 0,
    PRIMARY KEY (flight_id, cabin)
);
-- searchFlights(cabin:, maxPrice:, passengers:).
CREATE INDEX rm_flight_cabins_price ON rm_flight_cabins (cabin, fare);

CREATE TABLE rm_seats (
    flight_id        uuid        NOT NULL,
    seat             text        NOT NULL,   -- "12A"
    seat_row         smallint    NOT NULL,
    seat_letter      text        NOT NULL,
    cabin            text        NOT NULL,
    status           text        NOT NULL CHECK (status IN ('AVAILABLE', 'HELD', 'SOLD')),
    booking_id       uuid,
    -- Set while HELD: a reader may show a lapsed hold as AVAILABLE before
    -- its HoldExpired arrives (status = 'HELD' AND hold_expires_at <= now()).
    hold_expires_at  timestamptz,
    PRIMARY KEY (flight_id, seat)
);
CREATE INDEX rm_seats_map ON rm_seats (flight_id, seat_row, seat_letter);

---------------------------------------------------------------- bookings
-- Projector `bookings`.

CREATE TABLE rm_bookings (
    booking_id       uuid        PRIMARY KEY,
    pnr              text        NOT NULL UNIQUE,
    flight_id        uuid        NOT NULL,
    customer_id      uuid        NOT NULL,
    created_by       uuid        NOT NULL,
    status           text        NOT NULL,   -- HELD | PAYMENT_PENDING | CONFIRMED | TICKETED | CANCELLED | PAYMENT_FAILED | EXPIRED | FAILED
    total            numeric     NOT NULL,
    currency         text        NOT NULL,
    refund           numeric,                -- set by BookingCancelled
    hold_expires_at  timestamptz NOT NULL,
    payment_id       uuid,
    reason           text,                   -- why it failed / was cancelled
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);
CREATE INDEX rm_bookings_customer ON rm_bookings (customer_id, created_at, booking_id);
CREATE INDEX rm_bookings_flight ON rm_bookings (flight_id, created_at, booking_id);
CREATE INDEX rm_bookings_status ON rm_bookings (status, created_at, booking_id);
CREATE INDEX rm_bookings_created ON rm_bookings (created_at, booking_id);

CREATE TABLE rm_booking_passengers (
    booking_id       uuid        NOT NULL,
    passenger_id     uuid        NOT NULL,
    ordinal          smallint    NOT NULL,   -- order in the booking
    seat             text        NOT NULL,
    cabin            text        NOT NULL,
    fare             numeric     NOT NULL,
    -- NULL once the customer's personal data is erased.
    first_name       text,
    last_name        text,
    ticket_number    text,
    PRIMARY KEY (booking_id, passenger_id)
);
CREATE INDEX rm_booking_passengers_ticket ON rm_booking_passengers (ticket_number) WHERE ticket_number IS NOT NULL;

---------------------------------------------------------------- billing
-- Projector `billing`.

CREATE TABLE rm_payments (
    payment_id         uuid        PRIMARY KEY,
    booking_id         uuid        NOT NULL,
    status             text        NOT NULL,   -- PENDING | CAPTURED | DECLINED | REFUNDED | PARTIALLY_REFUNDED
    amount             numeric     NOT NULL,
    currency           text        NOT NULL,
    refunded           numeric     NOT NULL DEFAULT 0,
    card_brand         text,
    card_last4         text,
    gateway_reference  text,
    decline_code       text,
    decline_reason     text,
    requested_at       timestamptz NOT NULL,   -- Payment.createdAt
    captured_at        timestamptz,
    updated_at         timestamptz NOT NULL
);
CREATE INDEX rm_payments_booking ON rm_payments (booking_id);
CREATE INDEX rm_payments_requested ON rm_payments (requested_at, payment_id);
CREATE INDEX rm_payments_status ON rm_payments (status, requested_at, payment_id);

CREATE TABLE rm_invoices (
    invoice_number   text        PRIMARY KEY,
    payment_id       uuid        NOT NULL,
    booking_id       uuid        NOT NULL,
    currency         text        NOT NULL,
    -- [{description, quantity, unit_price: Money, amount: Money}]
    lines            jsonb       NOT NULL,
    subtotal         numeric     NOT NULL,
    tax_rate         numeric     NOT NULL,
    tax              numeric     NOT NULL,
    total            numeric     NOT NULL,
    issued_at        timestamptz NOT NULL
);
CREATE INDEX rm_invoices_payment ON rm_invoices (payment_id);
CREATE INDEX rm_invoices_booking ON rm_invoices (booking_id);

---------------------------------------------------------------- analytics
-- Projector `analytics`. Load factor per flight is read from rm_flights
-- (sold_seats / total_seats); these tables hold revenue and the funnel.

-- Its own copy of what it needs about flights and bookings, so it never
-- depends on another projector's progress.
CREATE TABLE rm_an_flights (
    flight_id    uuid PRIMARY KEY,
    airline      text NOT NULL,
    origin       text NOT NULL,
    destination  text NOT NULL,
    currency     text NOT NULL
);

CREATE TABLE rm_an_bookings (
    booking_id   uuid PRIMARY KEY,
    flight_id    uuid NOT NULL,
    created_day  date NOT NULL
);

-- Captured payments (on their capture day) and refunds (on their refund
-- day). Per month, route or airline: GROUP BY over this table.
CREATE TABLE rm_revenue_daily (
    day          date    NOT NULL,
    airline      text    NOT NULL,
    origin       text    NOT NULL,
    destination  text    NOT NULL,
    currency     text    NOT NULL,
    gross        numeric NOT NULL DEFAULT 0,
    refunds      numeric NOT NULL DEFAULT 0,
    net          numeric GENERATED ALWAYS AS (gross - refunds) STORED,
    captures     integer NOT NULL DEFAULT 0,
    refund_count integer NOT NULL DEFAULT 0,
    PRIMARY KEY (day, airline, origin, destination, currency)
);
CREATE INDEX rm_revenue_daily_airline ON rm_revenue_daily (airline, day);
CREATE INDEX rm_revenue_daily_route ON rm_revenue_daily (origin, destination, day);

-- The booking funnel by cohort: bookings created on `day` (UTC), and how
-- many of them reached each step.
CREATE TABLE rm_booking_funnel (
    day                date    PRIMARY KEY,
    created            integer NOT NULL DEFAULT 0,
    payment_submitted  integer NOT NULL DEFAULT 0,
    paid               integer NOT NULL DEFAULT 0,
    ticketed           integer NOT NULL DEFAULT 0,
    expired            integer NOT NULL DEFAULT 0,
    cancelled          integer NOT NULL DEFAULT 0,
    payment_failed     integer NOT NULL DEFAULT 0,
    failed             integer NOT NULL DEFAULT 0
);

-- The built-in projectors exist from the start, so a read-your-writes wait
-- (every checkpoint past a position) cannot pass before they have run.
INSERT INTO projection_checkpoints (name) VALUES ('flights'), ('bookings'), ('billing'), ('analytics');
