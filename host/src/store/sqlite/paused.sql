SELECT task_type, paused_at_ms FROM sluice_paused ORDER BY task_type
