-- After the head of a batch was dead-lettered: the items that were in flight
-- behind it were charged the same failed attempts, but they did not cause
-- them. Each starts its count afresh, so it gets its full max_attempts once it
-- is the head (their error history keeps what happened).
UPDATE sluice_items
   SET attempts = 0
 WHERE task_type = ?1 AND work_unit_key = ?2 AND state = 'pending'
   AND id BETWEEN (SELECT u.in_flight_from FROM sluice_units u
                    WHERE u.task_type = ?1 AND u.work_unit_key = ?2 AND u.claim_seq = ?3)
              AND (SELECT u.in_flight_through FROM sluice_units u
                    WHERE u.task_type = ?1 AND u.work_unit_key = ?2 AND u.claim_seq = ?3)
