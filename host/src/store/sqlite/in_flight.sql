-- The items in flight under claim ?3 of unit (?1, ?2), in id order.
SELECT id, attempts FROM sluice_items
 WHERE task_type = ?1 AND work_unit_key = ?2 AND state = 'pending'
   AND id BETWEEN (SELECT u.in_flight_from FROM sluice_units u
                    WHERE u.task_type = ?1 AND u.work_unit_key = ?2 AND u.claim_seq = ?3)
              AND (SELECT u.in_flight_through FROM sluice_units u
                    WHERE u.task_type = ?1 AND u.work_unit_key = ?2 AND u.claim_seq = ?3)
 ORDER BY id
