-- Adds a failed attempt with error ?4 to item ?3 of unit (?1, ?2).
UPDATE sluice_items
   SET attempts = attempts + 1,
       last_error = ?4,
       errors = json_insert(errors, '$[#]',
                            json_object('attempt', attempts + 1, 'at_ms', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), 'error', ?4))
 WHERE task_type = ?1 AND work_unit_key = ?2 AND id = ?3 AND state = 'pending'
