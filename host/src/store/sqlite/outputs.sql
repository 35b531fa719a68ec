SELECT item_ids, output, created_at_ms, call FROM sluice_outputs WHERE task_type = ?1 AND work_unit_key = ?2 ORDER BY id
