-- The polling schedule: one row per task waiting on its provider ("<task id>"), and one per task
-- awaiting a late reconciliation check after a timeout ("<task id>:reconcile").
-- See aigen/workqueue.py for the lease protocol.
CREATE TABLE poll_jobs (
    key text PRIMARY KEY,
    due_at timestamptz NOT NULL,
    lease_owner text,
    lease_until timestamptz,
    claims integer NOT NULL DEFAULT 0,
    attempts integer NOT NULL DEFAULT 0,
    state jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX poll_jobs_due ON poll_jobs (due_at);
