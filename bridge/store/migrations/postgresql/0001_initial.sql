-- Events, call stories and the provider call ids linked to them (as in the SQLite schema).
-- Times are BIGINT microseconds since 1970-01-01 UTC, like the SQLite store, so both
-- backends share one representation and every comparison is a plain integer one.

-- One row per accepted notification. An identity sequence never hands out a value twice,
-- even after the newest events were purged, so seq stays monotonic for the dispatcher.
-- Writers allocate seq under one transaction-level advisory lock (bridge/store/postgres.py),
-- so seq order is also commit order across instances.
CREATE TABLE events (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dedupe_key   TEXT   NOT NULL UNIQUE,
    call_id      TEXT   NOT NULL,
    status       TEXT   NOT NULL,
    timestamp_us BIGINT NOT NULL,   -- the provider's timestamp
    received_us  BIGINT NOT NULL,   -- when a bridge instance received it
    body         BYTEA  NOT NULL    -- bridge.events.encode_event
);
CREATE INDEX events_by_call ON events (call_id, seq);

-- One row per story; story_id is the first provider call id the store saw of it.
CREATE TABLE stories (
    story_id          TEXT    PRIMARY KEY,
    first_seq         BIGINT  NOT NULL,  -- decides which story survives a merge
    first_received_us BIGINT  NOT NULL,
    max_seq           BIGINT  NOT NULL,
    last_event_us     BIGINT  NOT NULL,
    dirty             BOOLEAN NOT NULL DEFAULT TRUE,
    dirty_seq         BIGINT,            -- seq that made it dirty (queue order)
    digest            TEXT,              -- as recorded by save_state
    ended_us          BIGINT             -- as recorded by save_state
);
CREATE INDEX stories_dirty ON stories (dirty_seq) WHERE dirty;
CREATE INDEX stories_open ON stories (last_event_us) WHERE ended_us IS NULL;
CREATE INDEX stories_ended ON stories (ended_us) WHERE ended_us IS NOT NULL;

-- Every provider call id of a story (including the story's own id).
CREATE TABLE links (
    call_id    TEXT   PRIMARY KEY,
    story_id   TEXT   NOT NULL REFERENCES stories (story_id),
    linked_seq BIGINT NOT NULL          -- the event that linked it (call_ids order)
);
CREATE INDEX links_by_story ON links (story_id, linked_seq);
