-- Delivery reads each channel's most important due work through an index, so a round costs
-- the same with 20 or 20 000 messages waiting (0002 ranked the whole backlog every round).
-- prio: the delivery priority, lower first (bridge/delivery.py explains the order):
--   0 missed alert, 1 new root or summary, 2 thread reply, 3 final root update,
--   4 intermediate root update, 5 retraction (delete what was posted).
-- lane: 0 a new post (paced per channel), 1 an edit of a posted message (paced per workspace
-- on Slack), ranked separately so a backlog of one never hides the other.
ALTER TABLE outbox ADD COLUMN prio SMALLINT GENERATED ALWAYS AS (
    CASE WHEN content IS NULL THEN 5
         WHEN kind = 'missed' THEN 0
         WHEN slot LIKE 'reply:%' THEN 2
         WHEN ref IS NULL THEN 1
         WHEN final THEN 3
         ELSE 4 END) STORED;
ALTER TABLE outbox ADD COLUMN lane SMALLINT GENERATED ALWAYS AS (
    CASE WHEN ref IS NULL THEN 0 ELSE 1 END) STORED;
CREATE INDEX outbox_due ON outbox (platform, channel, lane, prio, desired_us, sort_order)
    WHERE posted_version < desired_version AND NOT failed;
