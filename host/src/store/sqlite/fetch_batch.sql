-- Marks the next pending items of unit (?1, ?2) as in flight under claim ?4 of
-- worker ?6: at most ?3 items and ?5 tokens, always at least one.
WITH head AS (
    SELECT id,
           sum(tokens) OVER (ORDER BY id) AS running,
           row_number() OVER (ORDER BY id) AS n
      FROM (SELECT id, tokens FROM sluice_items
             WHERE task_type = ?1 AND work_unit_key = ?2 AND state = 'pending'
             ORDER BY id LIMIT ?3)
)
UPDATE sluice_items
   SET claim_seq = ?4
 WHERE id IN (SELECT id FROM head WHERE n = 1 OR running <= ?5)
   AND EXISTS (SELECT 1 FROM sluice_units u
                WHERE u.task_type = ?1 AND u.work_unit_key = ?2
                  AND u.claim_seq = ?4 AND u.claimed_by = ?6)
RETURNING id, payload, tokens, attempts, created_at_ms
