-- Delivery priority, re-ranked (issue 12 item 6, issue 17): what is wrong in chat is put
-- right first, then what a person is looking at. prio, lower first (bridge/deliver/delivery.py):
--   0 a retraction (delete what was posted: an alert for a call answered after all, a
--     transfer's leftover message) or a correction of a posted alert,
--   1 a new missed alert or a callback case step (and the live root an alert waits for),
--   2 the current state of a call still ringing or talking (its first post or an edit), and
--     the first post of any message,
--   3 the end state of a call that is over (its final edit) and the live thread's replies.
-- 0003 ranked retractions last (behind every routine update) and final edits before the
-- current state of live calls.
DROP INDEX outbox_due;
ALTER TABLE outbox DROP COLUMN prio;
ALTER TABLE outbox ADD COLUMN prio SMALLINT GENERATED ALWAYS AS (
    CASE WHEN content IS NULL THEN 0
         WHEN kind = 'missed' AND ref IS NOT NULL THEN 0
         WHEN kind = 'missed' THEN 1
         WHEN slot LIKE 'reply:%' THEN 3
         WHEN ref IS NULL OR NOT final THEN 2
         ELSE 3 END) STORED;
CREATE INDEX outbox_due ON outbox (platform, channel, lane, prio, desired_us, sort_order)
    WHERE posted_version < desired_version AND NOT failed;
