-- API keys. The secret is kept only as an HMAC under a key derived from AIGEN_SECRET_KEY
-- (services/gateway/keys.py); `id` is the visible part ("aigen_<id>_…"). The webhook signing
-- secret is sealed (Fernet), because the gateway must be able to sign with it.
CREATE TABLE gateway_api_keys (
    id text PRIMARY KEY,
    name text NOT NULL,
    owner text NOT NULL,
    secret_hash bytea NOT NULL,
    webhook_secret_sealed bytea NOT NULL,
    allowed_models text[],                      -- NULL: every model
    rate_per_minute integer CHECK (rate_per_minute > 0),
    burst integer CHECK (burst > 0),
    max_concurrent integer CHECK (max_concurrent > 0),
    budget_usd numeric(18, 6) CHECK (budget_usd >= 0),
    budget_period text NOT NULL DEFAULT 'total'
        CHECK (budget_period IN ('total', 'day', 'week', 'month')),
    expires_at timestamptz,
    revoked_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX gateway_api_keys_owner ON gateway_api_keys (owner);

-- What each key has committed now: open holds and what was charged in the current budget period.
-- Changed only together with the holds below, in one transaction (the ledger's write side).
CREATE TABLE gateway_key_usage (
    key_id text PRIMARY KEY REFERENCES gateway_api_keys (id) ON DELETE CASCADE,
    period_start timestamptz NOT NULL,
    period_charged_usd numeric(18, 6) NOT NULL DEFAULT 0,
    open_usd numeric(18, 6) NOT NULL DEFAULT 0,
    open_count integer NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- The money in play per task. A row is made at submission for keys with a budget or a
-- concurrency limit (before the task exists: task_id NULL), or when the task's TaskCreated is
-- handled. `state`: held → released | settled.
CREATE TABLE gateway_holds (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id text UNIQUE,
    key_id text,
    request_id text,
    owner text NOT NULL,
    amount_usd numeric(18, 6) NOT NULL,
    state text NOT NULL DEFAULT 'held' CHECK (state IN ('held', 'released', 'settled')),
    charged_usd numeric(18, 6) NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT gateway_holds_request UNIQUE (key_id, request_id)
);
CREATE INDEX gateway_holds_unattached ON gateway_holds (created_at) WHERE task_id IS NULL;

-- Client webhooks: the URL a task asked for, each delivery (one per task event worth telling),
-- each attempt, and the retry schedule (a work queue, see aigen/workqueue.py).
CREATE TABLE gateway_task_hooks (
    task_id text PRIMARY KEY,
    url text NOT NULL,
    key_id text,
    owner text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE gateway_webhook_deliveries (
    id uuid PRIMARY KEY,                        -- webhook-id: the id of the task event told
    task_id text NOT NULL,
    key_id text,
    url text NOT NULL,
    event_type text NOT NULL,
    body text NOT NULL,                         -- the exact bytes every attempt sends
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    last_status_code integer,
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    next_attempt_at timestamptz,
    finished_at timestamptz
);
CREATE INDEX gateway_webhook_deliveries_task ON gateway_webhook_deliveries (task_id, created_at);

CREATE TABLE gateway_webhook_attempts (
    delivery_id uuid NOT NULL REFERENCES gateway_webhook_deliveries (id) ON DELETE CASCADE,
    attempt integer NOT NULL,
    attempted_at timestamptz NOT NULL DEFAULT now(),
    status_code integer,
    error text,
    duration_ms double precision NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);

CREATE TABLE gateway_webhook_jobs (
    key text PRIMARY KEY,
    due_at timestamptz NOT NULL,
    lease_owner text,
    lease_until timestamptz,
    claims integer NOT NULL DEFAULT 0,
    attempts integer NOT NULL DEFAULT 0,
    state jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX gateway_webhook_jobs_due ON gateway_webhook_jobs (due_at);

-- The billing ledger's read model: a projection of the ledger events (projection.py),
-- rebuildable with `aigen projections rebuild ledger`.
CREATE TABLE ledger_entries (
    position bigint PRIMARY KEY,                -- the event's global position
    recorded_at timestamptz NOT NULL,
    day date NOT NULL,                          -- UTC day of the entry
    kind text NOT NULL CHECK (kind IN ('hold', 'release', 'settle', 'late_charge')),
    task_id text NOT NULL,
    key_id text NOT NULL DEFAULT '',
    owner text NOT NULL,
    model_slug text NOT NULL,
    provider_slug text NOT NULL,
    shot_id text NOT NULL DEFAULT '',
    held_usd numeric(18, 6) NOT NULL DEFAULT 0, -- + when a hold is placed, - when it ends
    charged_usd numeric(18, 6) NOT NULL DEFAULT 0,
    basis text NOT NULL DEFAULT ''
);
CREATE INDEX ledger_entries_key_day ON ledger_entries (key_id, day);
CREATE INDEX ledger_entries_model_day ON ledger_entries (model_slug, day);
CREATE INDEX ledger_entries_shot ON ledger_entries (shot_id) WHERE shot_id <> '';
CREATE INDEX ledger_entries_task ON ledger_entries (task_id);
CREATE INDEX ledger_entries_day ON ledger_entries (day);

CREATE TABLE ledger_tasks (
    task_id text PRIMARY KEY,
    key_id text NOT NULL DEFAULT '',
    owner text NOT NULL,
    model_slug text NOT NULL,
    provider_slug text NOT NULL,
    shot_id text NOT NULL DEFAULT '',
    quoted_usd numeric(18, 6) NOT NULL DEFAULT 0,
    held_usd numeric(18, 6) NOT NULL DEFAULT 0,
    charged_usd numeric(18, 6) NOT NULL DEFAULT 0,
    state text NOT NULL,                        -- held | released | settled
    basis text NOT NULL DEFAULT '',
    late boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX ledger_tasks_key ON ledger_tasks (key_id, created_at DESC);
