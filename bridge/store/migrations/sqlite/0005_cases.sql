-- Callback cases (issue 16): what happened to each customer number, as facts the pure case
-- fold (bridge/core/cases.py) reads, and the cases the dispatcher derived from them.

-- One row per fact: a routed call's (one per story and number, replaced on every refold) or
-- a person's click (kept as received: the store is where a click lives first).
CREATE TABLE case_facts (
    scope       TEXT    NOT NULL,
    number      TEXT    NOT NULL,   -- E.164
    fact_id     TEXT    NOT NULL,   -- story:<story id> or click:<click id>
    story_id    TEXT,               -- the story it was derived from (NULL: a click)
    kind        TEXT    NOT NULL,   -- missed, answered, attempt, click
    at_us       INTEGER NOT NULL,
    received_us INTEGER NOT NULL,
    request_sig TEXT    UNIQUE,     -- a click's signed request: an exact replay is refused
    body        BLOB    NOT NULL,   -- bridge.core.cases.encode_fact
    PRIMARY KEY (scope, number, fact_id)
);
CREATE INDEX case_facts_story ON case_facts (story_id) WHERE story_id IS NOT NULL;
CREATE INDEX case_facts_clicks ON case_facts (received_us) WHERE story_id IS NULL;

-- One row per case, written by the dispatcher when it folds the case's first missed call
-- (case_id: that call's story). check_us: when the clock alone changes the case next
-- (escalation, expiry); the janitor refolds it then.
CREATE TABLE cases (
    case_id   TEXT    PRIMARY KEY,
    scope     TEXT    NOT NULL,
    number    TEXT    NOT NULL,
    opened_us INTEGER NOT NULL,
    closed_us INTEGER,
    how       TEXT,
    check_us  INTEGER
);
CREATE INDEX cases_check ON cases (check_us) WHERE check_us IS NOT NULL;
CREATE INDEX cases_open ON cases (opened_us) WHERE closed_us IS NULL;

-- Per number, the time up to which its facts belong to cases that retention has purged:
-- older facts are ignored, so a later call never resurrects an old case's alert.
CREATE TABLE case_archive (
    scope    TEXT    NOT NULL,
    number   TEXT    NOT NULL,
    until_us INTEGER NOT NULL,
    PRIMARY KEY (scope, number)
);
