-- Adds a failed attempt with error $4 to item $3 of unit ($1, $2).
UPDATE sluice_items
   SET attempts = attempts + 1,
       last_error = $4,
       errors = errors || jsonb_build_array(jsonb_build_object(
                    'attempt', attempts + 1, 'at_ms', sluice_now_ms(), 'error', $4::text))
 WHERE task_type = $1 AND work_unit_key = $2 AND id = $3 AND state = 'pending'
