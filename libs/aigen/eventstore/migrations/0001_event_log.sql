-- The event log: append-only. Global position is assigned under an exclusive table lock
-- (see store.py), so positions grow in commit order and a tailing reader never skips an event.
CREATE TABLE events (
    global_position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id uuid NOT NULL UNIQUE,
    stream_id text NOT NULL,
    version bigint NOT NULL CHECK (version > 0),
    type text NOT NULL,
    payload bytea NOT NULL,
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_stream_version UNIQUE (stream_id, version)
);

-- Idempotent appends: one row per request id, naming what that request appended.
CREATE TABLE event_requests (
    request_id text PRIMARY KEY,
    stream_id text NOT NULL,
    first_version bigint NOT NULL,
    last_version bigint NOT NULL,
    first_position bigint NOT NULL,
    last_position bigint NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);

-- Where each reader of the log (projection, relay) has got to, and whether it is stuck.
CREATE TABLE checkpoints (
    name text PRIMARY KEY,
    position bigint NOT NULL DEFAULT 0,
    state text NOT NULL DEFAULT 'running',
    error text,
    error_position bigint,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Exactly-once effects for NATS consumers: a row per (consumer, event) written in the same
-- transaction as the effect; a duplicate row means "already done".
CREATE TABLE consumer_tracking (
    consumer text NOT NULL,
    event_id uuid NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

-- Work that could not be processed after its last delivery, kept for an operator.
CREATE TABLE dead_letters (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source text NOT NULL,
    subject text,
    stream_sequence bigint,
    deliveries integer,
    reason text NOT NULL,
    payload bytea,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
