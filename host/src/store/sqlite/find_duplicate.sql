SELECT id FROM sluice_items WHERE task_type = ?1 AND dedupe_key = ?2 AND state = 'pending'
