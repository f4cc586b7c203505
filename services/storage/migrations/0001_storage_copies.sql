-- Results already copied into the object store, one row per (task, result). A TaskCompleted
-- redelivered after a crash (copied, but ResultsStored not yet appended) reuses these copies
-- instead of downloading again; the row also keeps the sha256 that S3 cannot hold for
-- multipart objects.
CREATE TABLE storage_copies (
    task_id text NOT NULL,
    result_index integer NOT NULL,
    source text NOT NULL,          -- the provider URL or blob:<id> the bytes came from
    object_key text NOT NULL,
    size bigint NOT NULL,
    sha256 text NOT NULL,
    content_type text NOT NULL,
    copied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (task_id, result_index)
);
