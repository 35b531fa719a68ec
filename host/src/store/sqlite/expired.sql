-- Claims whose owner's lease ran out (or that have no lease at all: an
-- earlier run's claims, handed over at registration), except those of worker
-- ?2 (the reaper's own process) and of task types outside the JSON array ?3.
SELECT u.task_type, u.work_unit_key, u.claim_token, u.claimed_by
  FROM sluice_units u
  LEFT JOIN sluice_leases l ON l.worker = u.claimed_by
 WHERE u.claimed_by IS NOT NULL
   AND u.claimed_by IS NOT ?2
   AND (?3 IS NULL OR u.task_type IN (SELECT value FROM json_each(?3)))
   AND (l.expires_ms IS NULL OR l.expires_ms < CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
 LIMIT ?1
