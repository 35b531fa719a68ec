-- Releases claim $3 of worker $4 on unit ($1, $2); the unit is next available
-- $5 ms from now. With $6 and $7 (after a failed batch), its next batches
-- hold at most $6 items, none past item $7.
UPDATE sluice_units
   SET claimed_by = NULL,
       available_at_ms = sluice_now_ms() + $5,
       narrow_to = CASE WHEN $6::integer IS NULL THEN narrow_to ELSE $6 END,
       narrow_through = CASE WHEN $6::integer IS NULL THEN narrow_through ELSE $7 END
 WHERE task_type = $1 AND work_unit_key = $2 AND claim_token = $3 AND claimed_by = $4
RETURNING available_at_ms
