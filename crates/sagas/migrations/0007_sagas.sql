-- Sagas (crates/sagas) and the simulated payment provider (crates/gateway).

-- The simulated provider's own books. They stand in for a real provider's
-- records: the engine never reads them to decide anything, tests and the
-- crash check compare them with the event log.
CREATE TABLE gateway_sim_cards (
    token       text PRIMARY KEY,
    -- approve | decline | insufficient_funds | transient
    behaviour   text NOT NULL,
    brand       text NOT NULL,
    last4       text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE gateway_sim_charges (
    -- The caller's idempotency key: a retried call gets the first result.
    idempotency_key    text PRIMARY KEY,
    reference          text NOT NULL UNIQUE,
    token              text NOT NULL REFERENCES gateway_sim_cards (token),
    -- The merchant's own id for the payment (our payment id).
    merchant_reference text NOT NULL,
    amount             numeric(14, 2) NOT NULL,
    currency           text NOT NULL,
    -- captured | declined | failing (transient failures so far)
    status             text NOT NULL,
    decline_code       text,
    attempts           integer NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX gateway_sim_charges_merchant ON gateway_sim_charges (merchant_reference);

CREATE TABLE gateway_sim_refunds (
    idempotency_key  text PRIMARY KEY,
    reference        text NOT NULL UNIQUE,
    charge_reference text NOT NULL REFERENCES gateway_sim_charges (reference),
    amount           numeric(14, 2) NOT NULL,
    currency         text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX gateway_sim_refunds_charge ON gateway_sim_refunds (charge_reference);

-- Serial numbers for the simulated ticket issuer (10 digits per ticket).
CREATE SEQUENCE ticket_serials START 1 MAXVALUE 9999999999;

-- One row per process instance: where it stands, its durable deadline, its
-- retries. Rows are created by the saga inbox (a checkpointed follower of
-- the log) and driven by workers that lease them.
CREATE TABLE sagas (
    saga_id          uuid PRIMARY KEY,
    -- fulfilment | flight_cancellation
    kind             text NOT NULL,
    booking_id       uuid,
    flight_id        uuid NOT NULL,
    -- RUNNING | COMPENSATING | COMPLETED | COMPENSATED | PARKED
    status           text NOT NULL,
    step             text NOT NULL,
    -- Registered before the step they undo runs: [{name, done}]
    compensations    jsonb NOT NULL DEFAULT '[]',
    -- Set before the first gateway call: from then on the charge's outcome
    -- must be learnt from the gateway, it cannot simply be abandoned.
    charge_started   boolean NOT NULL DEFAULT false,
    hold_expires_at  timestamptz,
    payment_deadline timestamptz,
    next_run_at      timestamptz NOT NULL,
    attempts         integer NOT NULL DEFAULT 0,
    last_error       text,
    -- Bumped by the inbox on outside events; a worker that finds it changed
    -- when it lets go runs the saga again at once (no lost wake-up).
    wakes            bigint NOT NULL DEFAULT 0,
    claimed_wakes    bigint NOT NULL DEFAULT 0,
    locked_by        uuid,
    locked_until     timestamptz,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sagas_due ON sagas (next_run_at) WHERE status IN ('RUNNING', 'COMPENSATING');
CREATE INDEX sagas_by_flight ON sagas (flight_id) WHERE kind = 'fulfilment';
CREATE INDEX sagas_by_status ON sagas (status, saga_id);
CREATE INDEX sagas_by_booking ON sagas (booking_id);
