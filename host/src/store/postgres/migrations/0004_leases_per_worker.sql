-- Leases move off the unit rows, claims get random tokens, and a claim's
-- batch is recorded on its unit.
--
-- 1. A lease belongs to a host process: one row per worker in sluice_leases.
--    Producers' enqueues lock unit rows (the triggers keep their counts) for
--    as long as the producer's transaction stays open; a heartbeat that had
--    to renew every unit row it held waited behind any of them. Nothing but
--    Sluice's own hosts touches sluice_leases, and a heartbeat is one row.
-- 2. claim_seq becomes claim_token, a random number per claim. A counter
--    could go backwards when the database lost its last commits in a crash,
--    and hand the same fencing token to two claims.
-- 3. The items a claim has in flight are the pending items between
--    in_flight_from and in_flight_through on its unit (as on SQLite), instead
--    of a mark written on every fetched item.
-- 4. narrow_to and narrow_through: after a batch of several items failed, the
--    unit's next batches hold at most narrow_to items, none past
--    narrow_through, until the failing item is alone.

CREATE TABLE sluice_leases (
    worker     text   PRIMARY KEY,
    expires_ms bigint NOT NULL
);
INSERT INTO sluice_leases (worker, expires_ms)
SELECT claimed_by, max(lease_expires_ms)
  FROM sluice_units
 WHERE claimed_by IS NOT NULL
 GROUP BY claimed_by;

ALTER TABLE sluice_units RENAME COLUMN claim_seq TO claim_token;
ALTER TABLE sluice_units
    ADD COLUMN in_flight_from    bigint,
    ADD COLUMN in_flight_through bigint,
    ADD COLUMN narrow_to         integer,
    ADD COLUMN narrow_through    bigint;
UPDATE sluice_units u
   SET in_flight_from = f.first_id, in_flight_through = f.last_id
  FROM (SELECT task_type, work_unit_key, claim_seq, min(id) AS first_id, max(id) AS last_id
          FROM sluice_items
         WHERE state = 'pending' AND claim_seq IS NOT NULL
         GROUP BY task_type, work_unit_key, claim_seq) f
 WHERE u.claimed_by IS NOT NULL
   AND f.task_type = u.task_type AND f.work_unit_key = u.work_unit_key
   AND f.claim_seq = u.claim_token;
DROP INDEX sluice_units_leases;
ALTER TABLE sluice_units DROP COLUMN lease_expires_ms;
ALTER TABLE sluice_items DROP COLUMN claim_seq;

-- The first pending item of a unit is looked up under the statement's
-- snapshot; racing a concurrent `dead retry` it can find none while the
-- counts say otherwise. Keep the older of what the unit had and what entered
-- rather than NULL, which a max_wait gate would never pass.
CREATE OR REPLACE FUNCTION sluice_items_updated() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    -- Items entering or leaving 'pending', summed per unit.
    WITH moved AS (
        SELECT n.task_type, n.work_unit_key,
               CASE WHEN n.state = 'pending' THEN 1 ELSE -1 END AS sign,
               n.tokens, n.created_at_ms
          FROM new_rows n
          JOIN old_rows o ON o.id = n.id
         WHERE (o.state = 'pending') <> (n.state = 'pending')
    ), delta AS (
        SELECT task_type, work_unit_key,
               sum(sign) AS count_delta,
               sum(sign * tokens) AS tokens_delta,
               min(created_at_ms) FILTER (WHERE sign > 0) AS oldest_entering
          FROM moved
         GROUP BY task_type, work_unit_key
    )
    INSERT INTO sluice_units AS u (task_type, work_unit_key, pending_count, pending_tokens,
                                   oldest_pending_ms, available_at_ms)
    SELECT task_type, work_unit_key, count_delta, tokens_delta, oldest_entering, sluice_now_ms()
      FROM delta
    ON CONFLICT (task_type, work_unit_key) DO UPDATE
       SET pending_count = u.pending_count + EXCLUDED.pending_count,
           pending_tokens = u.pending_tokens + EXCLUDED.pending_tokens,
           oldest_pending_ms = CASE
               WHEN u.pending_count + EXCLUDED.pending_count <= 0 THEN NULL
               ELSE coalesce((SELECT i.created_at_ms FROM sluice_items i
                               WHERE i.task_type = u.task_type AND i.work_unit_key = u.work_unit_key
                                 AND i.state = 'pending'
                               ORDER BY i.id LIMIT 1),
                             LEAST(u.oldest_pending_ms, EXCLUDED.oldest_pending_ms))
           END;
    PERFORM pg_notify('sluice_items', n.task_type)
       FROM (SELECT DISTINCT n.task_type FROM new_rows n JOIN old_rows o ON o.id = n.id
              WHERE n.state = 'pending' AND o.state <> 'pending') n;
    RETURN NULL;
END
$$;

-- Units with nothing pending and no claim, for the reaper to delete once
-- their backoff is over (a unit row is recreated by the next enqueue).
CREATE INDEX sluice_units_empty ON sluice_units (available_at_ms)
    WHERE pending_count = 0 AND claimed_by IS NULL;
