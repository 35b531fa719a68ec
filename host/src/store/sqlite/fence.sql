-- Is claim ?3 of worker ?4 on unit (?1, ?2) still held?
SELECT 1 FROM sluice_units
 WHERE task_type = ?1 AND work_unit_key = ?2 AND claim_token = ?3 AND claimed_by = ?4
