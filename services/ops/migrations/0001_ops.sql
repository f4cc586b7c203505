-- Read models of the ops service (projections of the event log, rebuildable) and its own work
-- queue for alert webhooks.

-- Tasks as operations sees them (projection "ops-tasks"): the stage each is in and since when, for
-- stuck detection, in-flight counts and spend. Finished rows are pruned after a couple of days.
CREATE TABLE ops_tasks (
    task_id text PRIMARY KEY,
    provider_slug text NOT NULL,
    model_slug text NOT NULL,
    stage text NOT NULL,                 -- PENDING | PROCESSING | STORING | SUCCESS | FAILED | CANCELLED | DELETED
    stage_since timestamptz NOT NULL,
    max_duration_s double precision NOT NULL DEFAULT 0,
    quote_usd numeric(14, 6) NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL
);
CREATE INDEX ops_tasks_active ON ops_tasks (provider_slug) WHERE stage IN ('PENDING', 'PROCESSING', 'STORING');
CREATE INDEX ops_tasks_updated ON ops_tasks (updated_at);

-- Every dispatch outcome that counts for circuit breaking: a success, or a provider-side failure.
CREATE TABLE ops_dispatch_outcomes (
    position bigint PRIMARY KEY,         -- global position of the event that showed it
    provider_slug text NOT NULL,
    model_slug text NOT NULL,
    ok boolean NOT NULL,
    code text NOT NULL DEFAULT '',
    at timestamptz NOT NULL
);
CREATE INDEX ops_dispatch_outcomes_provider ON ops_dispatch_outcomes (provider_slug, at);
CREATE INDEX ops_dispatch_outcomes_at ON ops_dispatch_outcomes (at);

-- What finished tasks cost, per day, provider and model (for the budget alert).
CREATE TABLE ops_spend (
    day date NOT NULL,
    provider_slug text NOT NULL,
    model_slug text NOT NULL,
    usd numeric(16, 6) NOT NULL DEFAULT 0,
    tasks integer NOT NULL DEFAULT 0,
    PRIMARY KEY (day, provider_slug, model_slug)
);

-- The error log (projection "error-log"): adapter errors and task failures.
CREATE TABLE ops_errors (
    position bigint PRIMARY KEY,         -- global position of its event; also the entry's id
    kind text NOT NULL,                  -- adapter | task_failure
    provider_slug text NOT NULL DEFAULT '',
    model_slug text NOT NULL DEFAULT '',
    task_id text NOT NULL DEFAULT '',
    stage text NOT NULL DEFAULT '',
    code text NOT NULL,
    message text NOT NULL DEFAULT '',
    retryable boolean NOT NULL DEFAULT false,
    http_status integer NOT NULL DEFAULT 0,
    provider_code text NOT NULL DEFAULT '',
    response_snippet text NOT NULL DEFAULT '',
    correlation_id text NOT NULL DEFAULT '',
    at timestamptz NOT NULL
);
CREATE INDEX ops_errors_at ON ops_errors (at DESC, position DESC);
CREATE INDEX ops_errors_provider ON ops_errors (provider_slug, code, at DESC);
CREATE INDEX ops_errors_model ON ops_errors (model_slug, at DESC);
CREATE INDEX ops_errors_task ON ops_errors (task_id) WHERE task_id <> '';

-- Which model serves each unfinished task, and the request that created it: task failures and
-- adapter errors name neither.
CREATE TABLE ops_error_tasks (
    task_id text PRIMARY KEY,
    model_slug text NOT NULL,
    correlation_id text NOT NULL DEFAULT ''
);

-- Last health check and breaker state per provider (projection "provider-health").
CREATE TABLE ops_provider_status (
    provider_slug text PRIMARY KEY,
    checked_at timestamptz,
    ok boolean,
    message text NOT NULL DEFAULT '',
    latency_ms double precision NOT NULL DEFAULT 0,
    balance double precision,
    balance_unit text NOT NULL DEFAULT '',
    trigger text NOT NULL DEFAULT '',
    consecutive_failures integer NOT NULL DEFAULT 0,
    breaker_open boolean NOT NULL DEFAULT false,
    breaker_since timestamptz,
    breaker_reason text NOT NULL DEFAULT ''
);

-- Alerts (projection "alerts"): one row per raise, resolved in place; and each alert stream's head.
CREATE TABLE ops_alerts (
    id text PRIMARY KEY,                 -- "<stream>#<version of AlertRaised>"
    stream_id text NOT NULL,
    rule text NOT NULL,
    subject text NOT NULL,
    severity text NOT NULL,
    status text NOT NULL,                -- open | resolved
    summary text NOT NULL,
    value double precision NOT NULL DEFAULT 0,
    threshold double precision NOT NULL DEFAULT 0,
    details jsonb NOT NULL DEFAULT '{}'::jsonb,
    raised_at timestamptz NOT NULL,
    resolved_at timestamptz,
    resolution text NOT NULL DEFAULT ''
);
CREATE INDEX ops_alerts_raised ON ops_alerts (raised_at DESC, id DESC);
CREATE INDEX ops_alerts_open ON ops_alerts (rule, subject) WHERE status = 'open';

CREATE TABLE ops_alert_streams (
    stream_id text PRIMARY KEY,
    rule text NOT NULL,
    subject text NOT NULL,
    version bigint NOT NULL,
    open_alert text                      -- id of the open alert, NULL when none
);

-- Alert webhooks: one delivery per (alert event, URL), sent from a lease-based queue with retries.
CREATE TABLE ops_webhook_deliveries (
    id uuid PRIMARY KEY,
    event_id uuid NOT NULL,
    alert_id text NOT NULL,
    event text NOT NULL,                 -- raised | resolved
    url text NOT NULL,
    body text NOT NULL,
    status text NOT NULL DEFAULT 'pending',  -- pending | delivered | failed
    attempts integer NOT NULL DEFAULT 0,
    last_status_code integer,
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    UNIQUE (event_id, url)
);
CREATE INDEX ops_webhook_deliveries_alert ON ops_webhook_deliveries (alert_id, created_at DESC);

CREATE TABLE ops_webhook_jobs (
    key text PRIMARY KEY,
    due_at timestamptz NOT NULL,
    lease_owner text,
    lease_until timestamptz,
    claims integer NOT NULL DEFAULT 0,
    attempts integer NOT NULL DEFAULT 0,
    state jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ops_webhook_jobs_due ON ops_webhook_jobs (due_at);
