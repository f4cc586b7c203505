-- Studio: project > episode > shot > frame, with project-level characters and settings.
-- Children go with their parent (ON DELETE CASCADE). Tasks live in the event log, not here:
-- frames and the task read model below hold task ids as plain text, so a deleted task only
-- clears a link and never blocks or cascades.

CREATE TABLE studio_projects (
    id uuid PRIMARY KEY,
    slug text NOT NULL UNIQUE,
    name text NOT NULL,
    description text NOT NULL DEFAULT '',
    default_models jsonb NOT NULL DEFAULT '{}'::jsonb,  -- "IMAGE" | "VIDEO" | "AUDIO" → model slug
    style_prompt text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE studio_episodes (
    id uuid PRIMARY KEY,
    project_id uuid NOT NULL REFERENCES studio_projects (id) ON DELETE CASCADE,
    number integer NOT NULL CHECK (number > 0),
    title text NOT NULL DEFAULT '',
    synopsis text NOT NULL DEFAULT '',
    script text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT studio_episodes_number UNIQUE (project_id, number)
);

CREATE TABLE studio_settings (
    id uuid PRIMARY KEY,
    project_id uuid NOT NULL REFERENCES studio_projects (id) ON DELETE CASCADE,
    location text NOT NULL,
    time_of_day text NOT NULL DEFAULT '',
    mood text NOT NULL DEFAULT '',
    description text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX studio_settings_project ON studio_settings (project_id);

CREATE TABLE studio_characters (
    id uuid PRIMARY KEY,
    project_id uuid NOT NULL REFERENCES studio_projects (id) ON DELETE CASCADE,
    name text NOT NULL,
    description text NOT NULL DEFAULT '',
    reference_images text[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
-- Scene descriptions name characters, so a name must say which one.
CREATE UNIQUE INDEX studio_characters_name ON studio_characters (project_id, lower(name));

CREATE TABLE studio_shots (
    id uuid PRIMARY KEY,
    episode_id uuid NOT NULL REFERENCES studio_episodes (id) ON DELETE CASCADE,
    shot_number integer NOT NULL CHECK (shot_number > 0),
    position integer NOT NULL,
    title text NOT NULL DEFAULT '',
    description text NOT NULL DEFAULT '',
    action text NOT NULL DEFAULT '',
    camera text NOT NULL DEFAULT '',
    duration_seconds double precision NOT NULL DEFAULT 0 CHECK (duration_seconds >= 0),
    scene_descriptions jsonb NOT NULL DEFAULT '[]'::jsonb,  -- [{"character_name", "description"}]
    setting_id uuid REFERENCES studio_settings (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT studio_shots_number UNIQUE (episode_id, shot_number),
    -- Deferred: a reorder rewrites every position in one statement.
    CONSTRAINT studio_shots_position UNIQUE (episode_id, position) DEFERRABLE INITIALLY DEFERRED
);

CREATE TABLE studio_shot_characters (
    shot_id uuid NOT NULL REFERENCES studio_shots (id) ON DELETE CASCADE,
    character_id uuid NOT NULL REFERENCES studio_characters (id) ON DELETE CASCADE,
    linked_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (shot_id, character_id)
);
CREATE INDEX studio_shot_characters_character ON studio_shot_characters (character_id);

CREATE TABLE studio_frames (
    id uuid PRIMARY KEY,
    shot_id uuid NOT NULL REFERENCES studio_shots (id) ON DELETE CASCADE,
    frame_number integer NOT NULL CHECK (frame_number > 0),
    media_type text NOT NULL CHECK (media_type IN ('IMAGE', 'VIDEO', 'AUDIO')),
    url text NOT NULL,
    storage_key text NOT NULL DEFAULT '',
    task_id text,                       -- NULL once the task was deleted (the seed's SetNull)
    selected boolean NOT NULL DEFAULT false,
    -- A shot has one chosen picture (image or video) and one chosen sound.
    slot text GENERATED ALWAYS AS (CASE WHEN media_type = 'AUDIO' THEN 'audio' ELSE 'picture' END) STORED,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT studio_frames_number UNIQUE (shot_id, frame_number)
);
CREATE UNIQUE INDEX studio_frames_selected ON studio_frames (shot_id, slot) WHERE selected;
CREATE INDEX studio_frames_task ON studio_frames (task_id) WHERE task_id IS NOT NULL;

-- Ids of deleted shots, so generating for one says "deleted" rather than "never existed".
CREATE TABLE studio_deleted_shots (
    id uuid PRIMARY KEY,
    deleted_at timestamptz NOT NULL DEFAULT now()
);

-- Studio's view of the tasks bound to its shots, kept by the studio-tasks consumer from the
-- task events (and seeded by GenerateForShot's answer). Project and episode are copied when the
-- task is first seen, so a deleted shot's spending still counts for its episode and project.
CREATE TABLE studio_tasks (
    task_id text PRIMARY KEY,
    shot_id uuid NOT NULL,
    episode_id uuid,
    project_id uuid,
    version bigint NOT NULL,
    status text NOT NULL,
    deleted boolean NOT NULL DEFAULT false,
    quoted_usd numeric(14, 6) NOT NULL DEFAULT 0,   -- while running: its quote
    settled_usd numeric(14, 6) NOT NULL DEFAULT 0,  -- once finished: what it cost
    created_at timestamptz NOT NULL,
    view bytea NOT NULL                              -- aigen.v1.Task as of `version`
);
CREATE INDEX studio_tasks_shot ON studio_tasks (shot_id, created_at DESC, task_id DESC);
CREATE INDEX studio_tasks_episode ON studio_tasks (episode_id);
CREATE INDEX studio_tasks_project ON studio_tasks (project_id);

CREATE TABLE studio_exports (
    id uuid PRIMARY KEY,
    episode_id uuid NOT NULL REFERENCES studio_episodes (id) ON DELETE CASCADE,
    kind text NOT NULL,
    storage_key text NOT NULL,
    url text NOT NULL DEFAULT '',
    content_type text NOT NULL,
    size bigint NOT NULL,
    details jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX studio_exports_episode ON studio_exports (episode_id, created_at DESC);
