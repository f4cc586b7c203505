-- A stream's current version as of now, not as of the calling statement's start. An append
-- without an expected version (ANY_VERSION) asks this after it holds the position counter: every
-- append that could have raced it has committed by then, and a volatile function takes a fresh
-- snapshot, so the new events go after them instead of colliding on (stream_id, version).
CREATE FUNCTION events_version_now(stream text) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RETURN (SELECT coalesce(max(version), 0) FROM events WHERE stream_id = stream);
END
$$;
