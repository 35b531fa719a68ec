-- Releases claim ?3 on unit (?1, ?2) if the unit has nothing pending (its
-- count, kept by the triggers, already reflects this transaction's writes).
UPDATE sluice_units
   SET claimed_by = NULL,
       available_at_ms = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
 WHERE task_type = ?1 AND work_unit_key = ?2 AND claim_token = ?3 AND pending_count = 0
