INSERT INTO sluice_workers (id, host_name, pid, version, task_types) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (id) DO UPDATE
   SET host_name = EXCLUDED.host_name, pid = EXCLUDED.pid, version = EXCLUDED.version,
       task_types = EXCLUDED.task_types, flow = NULL,
       started_at_ms = sluice_now_ms(), last_seen_ms = sluice_now_ms()
