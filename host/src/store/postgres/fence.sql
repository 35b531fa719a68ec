-- Locks unit ($1, $2) if claim $3 of worker $4 still holds it.
SELECT 1 FROM sluice_units
 WHERE task_type = $1 AND work_unit_key = $2 AND claim_token = $3 AND claimed_by = $4
   FOR UPDATE
