-- Events, call stories and the provider call ids linked to them.
-- Times are integer microseconds since 1970-01-01 UTC (they sort and compare correctly).

-- One row per accepted notification. AUTOINCREMENT: a seq is never reused, even after
-- the newest events were purged, so seq stays monotonic for the dispatcher.
CREATE TABLE events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    dedupe_key   TEXT    NOT NULL UNIQUE,
    call_id      TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    timestamp_us INTEGER NOT NULL,   -- the provider's timestamp
    received_us  INTEGER NOT NULL,   -- when this bridge received it
    body         BLOB    NOT NULL    -- bridge.events.encode_event
);
CREATE INDEX events_by_call ON events (call_id, seq);

-- One row per story; story_id is the first provider call id the store saw of it.
CREATE TABLE stories (
    story_id          TEXT    PRIMARY KEY,
    first_seq         INTEGER NOT NULL,  -- decides which story survives a merge
    first_received_us INTEGER NOT NULL,
    max_seq           INTEGER NOT NULL,
    last_event_us     INTEGER NOT NULL,
    dirty             INTEGER NOT NULL DEFAULT 1 CHECK (dirty IN (0, 1)),
    dirty_seq         INTEGER,           -- seq that made it dirty (queue order)
    digest            TEXT,              -- as recorded by save_state
    ended_us          INTEGER            -- as recorded by save_state
);
CREATE INDEX stories_dirty ON stories (dirty_seq) WHERE dirty = 1;
CREATE INDEX stories_open ON stories (last_event_us) WHERE ended_us IS NULL;
CREATE INDEX stories_ended ON stories (ended_us) WHERE ended_us IS NOT NULL;

-- Every provider call id of a story (including the story's own id).
CREATE TABLE links (
    call_id    TEXT    PRIMARY KEY,
    story_id   TEXT    NOT NULL REFERENCES stories (story_id),
    linked_seq INTEGER NOT NULL          -- the event that linked it (call_ids order)
);
CREATE INDEX links_by_story ON links (story_id, linked_seq);
