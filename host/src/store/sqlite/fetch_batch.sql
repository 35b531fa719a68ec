-- Takes the next pending items of unit (?1, ?2) in flight under claim ?4 of
-- worker ?6: at most ?3 items and ?5 tokens, always at least one. Returns one
-- row, a JSON array of [id, payload, tokens, attempts, created_at_ms], or no
-- row when the claim is no longer held.
WITH batch AS (
    SELECT id, payload, tokens, attempts, created_at_ms
      FROM (SELECT id, payload, tokens, attempts, created_at_ms,
                   sum(tokens) OVER (ORDER BY id) AS running,
                   row_number() OVER (ORDER BY id) AS n
              FROM (SELECT id, payload, tokens, attempts, created_at_ms FROM sluice_items
                     WHERE task_type = ?1 AND work_unit_key = ?2 AND state = 'pending'
                     ORDER BY id LIMIT ?3))
     WHERE n = 1 OR running <= ?5
)
UPDATE sluice_units
   SET in_flight_from = coalesce(in_flight_from, (SELECT min(id) FROM batch)),
       in_flight_through = max(coalesce(in_flight_through, 0),
                               coalesce((SELECT max(id) FROM batch), 0))
 WHERE task_type = ?1 AND work_unit_key = ?2 AND claim_seq = ?4 AND claimed_by = ?6
RETURNING (SELECT json_group_array(json_array(id, payload, tokens, attempts, created_at_ms))
             FROM batch)
