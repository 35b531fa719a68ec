-- Deletes the pending items of unit ($1, $2) that its claim (if any) does
-- not have in flight. The caller locked the unit row first, so a concurrent
-- fetch either marked its batch before this reads the range, or waits.
DELETE FROM sluice_items i
 WHERE i.task_type = $1 AND i.work_unit_key = $2 AND i.state = 'pending'
   AND NOT EXISTS (SELECT 1 FROM sluice_units u
                    WHERE u.task_type = $1 AND u.work_unit_key = $2
                      AND u.claimed_by IS NOT NULL
                      AND i.id BETWEEN u.in_flight_from AND u.in_flight_through)
