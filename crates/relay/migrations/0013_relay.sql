-- Where the Kafka relay stands in the global log: it moves only past
-- events the broker acknowledged.
CREATE TABLE relay_checkpoints (
    name        text        PRIMARY KEY,
    tx          bigint      NOT NULL,
    seq         bigint      NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
