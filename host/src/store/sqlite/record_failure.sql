-- Adds a failed attempt with error ?4 to the items in flight under claim ?3.
UPDATE sluice_items
   SET attempts = attempts + 1,
       last_error = ?4,
       errors = json_insert(errors, '$[#]',
                            json_object('attempt', attempts + 1, 'at_ms', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), 'error', ?4))
 WHERE task_type = ?1 AND work_unit_key = ?2 AND state = 'pending'
   AND id BETWEEN (SELECT u.in_flight_from FROM sluice_units u
                    WHERE u.task_type = ?1 AND u.work_unit_key = ?2 AND u.claim_seq = ?3)
              AND (SELECT u.in_flight_through FROM sluice_units u
                    WHERE u.task_type = ?1 AND u.work_unit_key = ?2 AND u.claim_seq = ?3)
