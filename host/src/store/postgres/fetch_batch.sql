-- Takes the next pending items of unit ($1, $2) in flight under claim $4 of
-- worker $6: at most $3 items and $5 tokens, always at least one, fewer while
-- the unit narrows after a failed batch. Returns one row, a JSON array of
-- [id, payload (as a string), tokens, attempts, created_at_ms] (NULL when
-- nothing is pending), or no row when the claim is no longer held. The unit
-- row is locked first, so a concurrent reap either finishes first, and this
-- finds the claim gone, or waits until this has committed.
--
-- Delayed items: the batch stops before the first item whose run_after_ms
-- has not come (unit order holds). When that is the unit's first pending
-- item, its time is recorded on the unit (head_run_after_ms), so the release
-- that follows makes the unit wait for it.
WITH unit AS (
    SELECT u.narrow_to,
           u.narrow_through IS NOT NULL
               AND u.narrow_through >= (SELECT min(i.id) FROM sluice_items i
                                         WHERE i.task_type = $1 AND i.work_unit_key = $2
                                           AND i.state = 'pending') AS narrowing,
           u.narrow_through
      FROM sluice_units u
     WHERE u.task_type = $1 AND u.work_unit_key = $2
       AND u.claim_token = $4 AND u.claimed_by = $6
       FOR UPDATE
), head AS (
    SELECT id, payload, tokens, attempts, created_at_ms, run_after_ms,
           sum(tokens) OVER (ORDER BY id) AS running,
           row_number() OVER (ORDER BY id) AS n,
           bool_and(coalesce(run_after_ms, 0) <= sluice_now_ms()) OVER (ORDER BY id) AS due
      FROM (SELECT i.id, i.payload, i.tokens, i.attempts, i.created_at_ms, i.run_after_ms
              FROM sluice_items i CROSS JOIN unit
             WHERE i.task_type = $1 AND i.work_unit_key = $2 AND i.state = 'pending'
               AND (NOT unit.narrowing OR i.id <= unit.narrow_through)
             ORDER BY i.id
             LIMIT coalesce((SELECT CASE WHEN narrowing THEN LEAST($3, narrow_to) ELSE $3 END
                               FROM unit), 0)
           ) pending
), batch AS (
    SELECT * FROM head WHERE due AND (n = 1 OR running <= $5)
), marked AS (
    UPDATE sluice_units u
       SET in_flight_from = LEAST(u.in_flight_from, (SELECT min(id) FROM batch)),
           in_flight_through = GREATEST(u.in_flight_through, (SELECT max(id) FROM batch)),
           head_run_after_ms = (SELECT run_after_ms FROM head WHERE n = 1)
     WHERE u.task_type = $1 AND u.work_unit_key = $2 AND u.claim_token = $4
       AND EXISTS (SELECT 1 FROM head)
)
SELECT (SELECT json_agg(json_build_array(id, payload::text, tokens, attempts, created_at_ms)
                        ORDER BY id)
          FROM batch)::text
  FROM unit
