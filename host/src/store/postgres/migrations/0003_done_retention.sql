-- Done items are deleted once they are older than the host's `retain_done`
-- (their outputs stay in sluice_outputs). This index finds them oldest first
-- without reading the pending and dead ones.
--
-- Building it blocks writes to sluice_items for as long as it takes. On a
-- large queue, build it beforehand without blocking and this step finds it:
--   CREATE INDEX CONCURRENTLY sluice_items_done ON sluice_items (finished_at_ms)
--       WHERE state = 'done';
-- (Not done here: CONCURRENTLY waits for every older transaction, including
-- other hosts waiting to migrate, and deadlocks with them.)
CREATE INDEX IF NOT EXISTS sluice_items_done ON sluice_items (finished_at_ms)
    WHERE state = 'done';
