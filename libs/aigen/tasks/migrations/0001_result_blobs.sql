-- Bytes a provider handed us directly (OpenAI b64 images, ElevenLabs audio), staged until the
-- storage service has copied them into object storage. Events refer to them by id ("blob:<id>"),
-- so megabytes never travel through the event log or NATS.
CREATE TABLE result_blobs (
    id uuid PRIMARY KEY,
    task_id text NOT NULL,
    content_type text NOT NULL,
    data bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX result_blobs_task ON result_blobs (task_id);
