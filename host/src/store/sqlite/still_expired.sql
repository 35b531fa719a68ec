-- Is claim ?3 of worker ?4 on unit (?1, ?2) still held, with the worker's
-- lease run out (or none at all)?
SELECT 1
  FROM sluice_units u
  LEFT JOIN sluice_leases l ON l.worker = u.claimed_by
 WHERE u.task_type = ?1 AND u.work_unit_key = ?2 AND u.claim_token = ?3 AND u.claimed_by = ?4
   AND (l.expires_ms IS NULL OR l.expires_ms < CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
