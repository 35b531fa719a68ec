-- Extends every unexpired lease worker ?1 holds by ?2 ms; returns the claims it holds.
UPDATE sluice_units
   SET lease_expires_ms = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) + ?2
 WHERE claimed_by = ?1
   -- An expired lease stays expired: the reaper owns it now.
   AND lease_expires_ms >= CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
RETURNING task_type, work_unit_key, claim_seq
