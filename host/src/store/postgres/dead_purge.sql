DELETE FROM sluice_items
 WHERE state = 'dead'
   AND ($1::bigint IS NULL OR id = $1)
   AND ($2::text IS NULL OR task_type = $2)
   AND ($3::text IS NULL OR work_unit_key = $3)
