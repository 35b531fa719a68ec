SELECT id, task_type, work_unit_key, payload, attempts, last_error, errors, created_at_ms, finished_at_ms
  FROM sluice_items
 WHERE state = 'dead'
   AND (?1 IS NULL OR id = ?1)
   AND (?2 IS NULL OR task_type = ?2)
   AND (?3 IS NULL OR work_unit_key = ?3)
 ORDER BY id
 LIMIT ?4
