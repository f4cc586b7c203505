-- Catalog: what the definitions say (rewritten at every start) and what admins changed
-- (kept in `overrides`, never touched by a re-seed). Effective value = override, else definition.
CREATE TABLE catalog_platforms (
    id uuid PRIMARY KEY,
    slug text NOT NULL UNIQUE,
    definition jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE catalog_providers (
    id uuid PRIMARY KEY,
    slug text NOT NULL UNIQUE,
    platform_id uuid NOT NULL REFERENCES catalog_platforms (id),
    definition jsonb NOT NULL,
    overrides jsonb NOT NULL DEFAULT '{}'::jsonb,
    api_key_sealed bytea,          -- Fernet token under AIGEN_SECRET_KEY; never plain text
    api_key_last4 text,            -- for the masked display only
    seeded boolean NOT NULL DEFAULT true,  -- false once its definition file disappears
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE catalog_models (
    id uuid PRIMARY KEY,
    slug text NOT NULL UNIQUE,
    provider_id uuid NOT NULL REFERENCES catalog_providers (id),
    definition jsonb NOT NULL,
    overrides jsonb NOT NULL DEFAULT '{}'::jsonb,
    seeded boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX catalog_models_provider ON catalog_models (provider_id);

-- Usage counts: a projection of task events (see usage.py).
CREATE TABLE catalog_model_usage (
    model_slug text PRIMARY KEY,
    usage_count bigint NOT NULL DEFAULT 0
);
CREATE TABLE catalog_usage_tasks (
    task_id text PRIMARY KEY,
    model_slug text NOT NULL
);
