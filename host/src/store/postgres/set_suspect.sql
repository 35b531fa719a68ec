-- Marks unit ($1, $2) as a suspect ($5 true) or clears the mark ($5 false),
-- fenced by claim $3 of worker $4.
UPDATE sluice_units
   SET suspect = $5
 WHERE task_type = $1 AND work_unit_key = $2 AND claim_token = $3 AND claimed_by = $4
RETURNING 1
