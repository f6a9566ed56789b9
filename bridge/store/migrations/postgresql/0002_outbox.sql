-- The delivery outbox: desired vs posted chat messages per call story (bridge/store/outbox.py).
CREATE TABLE outbox (
    story_id        TEXT    NOT NULL,
    destination     TEXT    NOT NULL,
    platform        TEXT    NOT NULL,
    slot            TEXT    NOT NULL,
    channel         TEXT    NOT NULL,
    kind            TEXT    NOT NULL CHECK (kind IN ('live', 'missed', 'summary')),
    sort_order      INTEGER NOT NULL,
    content         BYTEA,                       -- NULL: retract the posted message
    final           BOOLEAN NOT NULL DEFAULT FALSE,
    desired_version INTEGER NOT NULL,
    desired_us      BIGINT  NOT NULL,
    posted_version  INTEGER NOT NULL DEFAULT 0,
    ref             TEXT,                        -- encoded MessageRef once posted
    attempt_us      BIGINT,                      -- set before a post whose outcome is unknown
    attempts        INTEGER NOT NULL DEFAULT 0,
    due_us          BIGINT  NOT NULL,            -- not before (missed settle time, backoff)
    failed          BOOLEAN NOT NULL DEFAULT FALSE,  -- permanent error: given up
    last_error      TEXT,
    created_us      BIGINT  NOT NULL,
    PRIMARY KEY (story_id, destination, platform, slot)
);
CREATE INDEX outbox_pending ON outbox (due_us)
    WHERE posted_version < desired_version AND NOT failed;
