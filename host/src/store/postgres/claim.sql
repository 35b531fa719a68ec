-- Claims up to $6 ready units of the task types in $3 (with gates $4 min
-- tokens and $5 max wait ms, NULL when off) for worker $1, lease $2 ms.
-- SKIP LOCKED lets concurrent claimers pass each other instead of queueing.
WITH gate AS (
    SELECT * FROM unnest($3::text[], $4::bigint[], $5::bigint[])
        AS g(task_type, min_tokens, max_wait_ms)
), ready AS (
    SELECT u.task_type, u.work_unit_key
      FROM sluice_units u
      JOIN gate g ON g.task_type = u.task_type
     WHERE u.claimed_by IS NULL
       AND u.pending_count > 0
       AND u.available_at_ms <= sluice_now_ms()
       AND ((g.min_tokens IS NULL AND g.max_wait_ms IS NULL)
            OR u.pending_tokens >= g.min_tokens
            OR u.oldest_pending_ms <= sluice_now_ms() - g.max_wait_ms)
     ORDER BY u.available_at_ms
     LIMIT $6
       FOR UPDATE OF u SKIP LOCKED
)
UPDATE sluice_units u
   SET claimed_by = $1,
       claim_seq = u.claim_seq + 1,
       lease_expires_ms = sluice_now_ms() + $2
  FROM ready
 WHERE u.task_type = ready.task_type AND u.work_unit_key = ready.work_unit_key
RETURNING u.task_type, u.work_unit_key, u.claim_seq
