-- Dispatch work: one row per task waiting for its (next) provider call. See aigen/workqueue.py.
CREATE TABLE dispatch_jobs (
    key text PRIMARY KEY,
    due_at timestamptz NOT NULL,
    lease_owner text,
    lease_until timestamptz,
    claims integer NOT NULL DEFAULT 0,
    attempts integer NOT NULL DEFAULT 0,
    state jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dispatch_jobs_due ON dispatch_jobs (due_at);

-- The task list/detail read model: a projection of task events (projection.py), rebuildable.
CREATE TABLE task_views (
    task_id text PRIMARY KEY,
    version bigint NOT NULL,
    status text NOT NULL,
    progress double precision NOT NULL DEFAULT 0,
    model_id text NOT NULL,
    model_slug text NOT NULL,
    provider_slug text NOT NULL,
    output_type text NOT NULL,
    prompt text NOT NULL,
    input_images jsonb NOT NULL DEFAULT '[]'::jsonb,
    number_of_outputs integer NOT NULL,
    parameters jsonb NOT NULL DEFAULT '{}'::jsonb,
    results jsonb NOT NULL DEFAULT '[]'::jsonb,
    results_stored boolean NOT NULL DEFAULT false,
    provider_task_id text NOT NULL DEFAULT '',
    error_code text,
    error_message text,
    quote jsonb NOT NULL DEFAULT '{}'::jsonb,
    quote_usd numeric(14, 6) NOT NULL DEFAULT 0,
    charge jsonb,
    charge_usd numeric(14, 6),
    shot_id text NOT NULL DEFAULT '',
    owner text NOT NULL DEFAULT '',
    request_id text NOT NULL DEFAULT '',
    webhook_url text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    completed_at timestamptz,
    deleted_at timestamptz
);
CREATE INDEX task_views_created ON task_views (created_at DESC, task_id DESC);
CREATE INDEX task_views_owner ON task_views (owner, created_at DESC);
CREATE INDEX task_views_status ON task_views (status, created_at DESC);
CREATE INDEX task_views_model ON task_views (model_slug, created_at DESC);
CREATE INDEX task_views_provider ON task_views (provider_slug, created_at DESC);
CREATE INDEX task_views_shot ON task_views (shot_id, created_at DESC) WHERE shot_id <> '';
