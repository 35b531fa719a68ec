-- What the dashboard needs (issue 15): dead letters in id order, and hosts that drain.
--
-- Dead letters in id order without a task type (`/v1/dead`, the dashboard's
-- dead-letter page): the dead index leads with the task type, so Postgres
-- walked the primary key instead, reading every pending item before the
-- first dead one (250 ms with a million pending). This index holds the dead
-- ones alone, in id order.
--
-- Building it blocks writes to sluice_items for as long as it takes. On a
-- large queue, build it beforehand without blocking and this step finds it:
--   CREATE INDEX CONCURRENTLY sluice_items_dead_id ON sluice_items (id)
--       WHERE state = 'dead';
CREATE INDEX IF NOT EXISTS sluice_items_dead_id ON sluice_items (id) WHERE state = 'dead';

-- When a host began draining (its first SIGTERM or SIGINT: no new claims,
-- running units finishing), for the dashboard's hosts page. NULL while it runs.
ALTER TABLE sluice_workers ADD COLUMN IF NOT EXISTS draining_since_ms bigint;
