-- Is claim ?3 of worker ?4 on unit (?1, ?2) still held, with its lease run out?
SELECT 1 FROM sluice_units
 WHERE task_type = ?1 AND work_unit_key = ?2 AND claim_seq = ?3 AND claimed_by = ?4
   AND lease_expires_ms < CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
