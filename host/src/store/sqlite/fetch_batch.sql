-- Takes the next pending items of unit (?1, ?2) in flight under claim ?4 of
-- worker ?6: at most ?3 items and ?5 tokens, always at least one, fewer while
-- the unit narrows after a failed batch. Returns one row, a JSON array of
-- [id, payload, tokens, attempts, created_at_ms], or no row when the claim is
-- no longer held.
--
-- Delayed items: the batch stops before the first item whose run_after_ms
-- has not come (unit order holds). The unit's first pending item's time is
-- recorded on the unit (head_run_after_ms), so that when it is not yet due,
-- the release that follows makes the unit wait for it.
WITH unit AS (
    SELECT u.narrow_to, u.narrow_through,
           coalesce(u.narrow_through >= (SELECT min(i.id) FROM sluice_items i
                                          WHERE i.task_type = ?1 AND i.work_unit_key = ?2
                                            AND i.state = 'pending'), 0) AS narrowing
      FROM sluice_units u
     WHERE u.task_type = ?1 AND u.work_unit_key = ?2 AND u.claim_token = ?4 AND u.claimed_by = ?6
), head AS (
    SELECT id, payload, tokens, attempts, created_at_ms, run_after_ms,
           sum(tokens) OVER (ORDER BY id) AS running,
           row_number() OVER (ORDER BY id) AS n,
           max(coalesce(run_after_ms, 0) > CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
               OVER (ORDER BY id) AS waiting
      FROM (SELECT i.id, i.payload, i.tokens, i.attempts, i.created_at_ms, i.run_after_ms
              FROM sluice_items i CROSS JOIN unit
             WHERE i.task_type = ?1 AND i.work_unit_key = ?2 AND i.state = 'pending'
               AND (NOT unit.narrowing OR i.id <= unit.narrow_through)
             ORDER BY i.id
             LIMIT coalesce((SELECT CASE WHEN narrowing THEN min(?3, narrow_to)
                                         ELSE ?3 END
                               FROM unit), 0))
), batch AS (
    SELECT id, payload, tokens, attempts, created_at_ms
      FROM head
     WHERE NOT waiting AND (n = 1 OR running <= ?5)
)
UPDATE sluice_units
   SET in_flight_from = min(coalesce(in_flight_from, (SELECT min(id) FROM batch)),
                            coalesce((SELECT min(id) FROM batch), in_flight_from)),
       in_flight_through = max(coalesce(in_flight_through, 0),
                               coalesce((SELECT max(id) FROM batch), 0)),
       head_run_after_ms = (SELECT run_after_ms FROM head WHERE n = 1)
 WHERE task_type = ?1 AND work_unit_key = ?2 AND claim_token = ?4 AND claimed_by = ?6
RETURNING (SELECT json_group_array(json_array(id, payload, tokens, attempts, created_at_ms))
             FROM batch)
