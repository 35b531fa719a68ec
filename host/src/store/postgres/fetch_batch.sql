-- Marks the next pending items of unit ($1, $2) as in flight under claim $4 of
-- worker $6: at most $3 items and $5 tokens, always at least one. The fence
-- locks the unit row (FOR SHARE) so a concurrent reap either finishes first,
-- and this finds the claim gone, or waits until this has committed.
WITH fence AS (
    SELECT 1 FROM sluice_units u
     WHERE u.task_type = $1 AND u.work_unit_key = $2
       AND u.claim_seq = $4 AND u.claimed_by = $6
       FOR SHARE
), head AS (
    SELECT id,
           sum(tokens) OVER (ORDER BY id) AS running,
           row_number() OVER (ORDER BY id) AS n
      FROM (SELECT id, tokens FROM sluice_items
             WHERE task_type = $1 AND work_unit_key = $2 AND state = 'pending'
             ORDER BY id LIMIT $3) pending
     WHERE EXISTS (SELECT 1 FROM fence)
)
UPDATE sluice_items i
   SET claim_seq = $4
  FROM head
 WHERE i.id = head.id
   AND i.state = 'pending'
   AND (head.n = 1 OR head.running <= $5)
RETURNING i.id, i.payload::text, i.tokens, i.attempts, i.created_at_ms
