-- Locks unit ($1, $2) if claim $3 of worker $4 still holds it and the
-- worker's lease has run out (or it has none); skips it if another reaper or
-- a fenced write has it locked.
SELECT 1
  FROM sluice_units u
  LEFT JOIN sluice_leases l ON l.worker = u.claimed_by
 WHERE u.task_type = $1 AND u.work_unit_key = $2 AND u.claim_token = $3 AND u.claimed_by = $4
   AND (l.expires_ms IS NULL OR l.expires_ms < sluice_now_ms())
   FOR UPDATE OF u SKIP LOCKED
