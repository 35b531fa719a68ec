-- The items in flight under claim $3 of unit ($1, $2) up to item $4, with
-- their failed attempts, in id order.
SELECT i.id, i.attempts
  FROM sluice_items i
  JOIN sluice_units u ON u.task_type = i.task_type AND u.work_unit_key = i.work_unit_key
 WHERE i.task_type = $1 AND i.work_unit_key = $2 AND i.state = 'pending'
   AND u.claim_token = $3
   AND i.id BETWEEN u.in_flight_from AND u.in_flight_through
   AND i.id <= $4
 ORDER BY i.id
