-- How many of the items in ?4 (a JSON array of ids) are pending and in
-- flight under claim ?3 of unit (?1, ?2).
SELECT count(*)
  FROM sluice_items
 WHERE id IN (SELECT value FROM json_each(?4))
   AND task_type = ?1 AND work_unit_key = ?2
   AND state = 'pending'
   AND id BETWEEN (SELECT u.in_flight_from FROM sluice_units u
                    WHERE u.task_type = ?1 AND u.work_unit_key = ?2 AND u.claim_token = ?3)
              AND (SELECT u.in_flight_through FROM sluice_units u
                    WHERE u.task_type = ?1 AND u.work_unit_key = ?2 AND u.claim_token = ?3)
