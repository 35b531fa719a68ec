-- Deletes the pending items of unit (?1, ?2) that its claim (if any) does
-- not have in flight.
DELETE FROM sluice_items
 WHERE task_type = ?1 AND work_unit_key = ?2 AND state = 'pending'
   AND NOT EXISTS (SELECT 1 FROM sluice_units u
                    WHERE u.task_type = ?1 AND u.work_unit_key = ?2
                      AND u.claimed_by IS NOT NULL
                      AND sluice_items.id BETWEEN u.in_flight_from AND u.in_flight_through)
