-- Releases claim ?3 of worker ?4 on unit (?1, ?2); the unit is next available
-- ?5 ms from now.
UPDATE sluice_units
   SET claimed_by = NULL, lease_expires_ms = NULL, available_at_ms = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) + ?5
 WHERE task_type = ?1 AND work_unit_key = ?2 AND claim_seq = ?3 AND claimed_by = ?4
RETURNING available_at_ms
