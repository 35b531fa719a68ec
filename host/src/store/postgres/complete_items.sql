-- Marks items $4 done, if they are in flight under claim $3 of unit ($1, $2).
UPDATE sluice_items
   SET state = 'done', finished_at_ms = sluice_now_ms()
 WHERE id = ANY($4::bigint[])
   AND task_type = $1 AND work_unit_key = $2
   AND state = 'pending' AND claim_seq = $3
