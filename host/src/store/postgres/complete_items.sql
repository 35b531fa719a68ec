-- Marks items $4 done, if they are in flight under claim $3 of unit ($1, $2).
UPDATE sluice_items
   SET state = 'done', finished_at_ms = sluice_now_ms()
  FROM sluice_units u
 WHERE sluice_items.id = ANY($4::bigint[])
   AND sluice_items.task_type = $1 AND sluice_items.work_unit_key = $2
   AND sluice_items.state = 'pending'
   AND u.task_type = $1 AND u.work_unit_key = $2 AND u.claim_token = $3
   AND sluice_items.id BETWEEN u.in_flight_from AND u.in_flight_through
