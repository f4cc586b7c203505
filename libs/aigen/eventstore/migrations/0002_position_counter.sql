-- Global positions come from one counter row instead of an identity sequence. An append takes
-- the positions it needs by updating this row, inside the same statement that inserts the
-- events; the row lock is held until the append commits, so positions are handed out in
-- commit order (see store.py). Unlike LOCK TABLE it needs no separate statement, so an append
-- is one statement and the lock is held for as short a time as the commit takes.
ALTER TABLE events ALTER COLUMN global_position DROP IDENTITY IF EXISTS;

CREATE TABLE event_head (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    position bigint NOT NULL
);
INSERT INTO event_head (position) SELECT coalesce(max(global_position), 0) FROM events;

-- Refuses an append from inside the append statement (so a pipelined transaction aborts whole).
CREATE FUNCTION events_refuse(code text, detail text) RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = code, MESSAGE = 'append refused', DETAIL = detail;
END
$$;
