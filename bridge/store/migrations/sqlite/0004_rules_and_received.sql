-- Routing re-decides a call from all its events with the rules it was first routed by
-- (issue 12): the story pins the rules' version, and every version a story pinned is kept.
ALTER TABLE stories ADD COLUMN rules_version TEXT;
CREATE TABLE rulesets (
    version   TEXT    PRIMARY KEY,   -- sha256 of the file's text
    source    TEXT    NOT NULL,      -- the file it was loaded from (for messages)
    text      TEXT    NOT NULL,
    stored_us INTEGER NOT NULL       -- refreshed while an instance runs with it
);

-- Staleness and retention count from when this bridge last received an event of the story,
-- never from the provider's timestamps (a provider clock that is off, or an old `ended`).
ALTER TABLE stories ADD COLUMN last_received_us INTEGER;
UPDATE stories SET last_received_us = coalesce(
    (SELECT max(e.received_us) FROM events AS e JOIN links AS l ON l.call_id = e.call_id
     WHERE l.story_id = stories.story_id),
    first_received_us);
DROP INDEX stories_open;
DROP INDEX stories_ended;
CREATE INDEX stories_open ON stories (last_received_us) WHERE ended_us IS NULL;
CREATE INDEX stories_ended ON stories (last_received_us) WHERE ended_us IS NOT NULL;

-- Provider call ids of purged stories: a redelivery after retention is recognised (answered
-- "duplicate", never posted again) for as long as a provider may still retry.
CREATE TABLE purged_calls (
    call_id   TEXT    PRIMARY KEY,
    purged_us INTEGER NOT NULL
);
CREATE INDEX purged_calls_age ON purged_calls (purged_us);
