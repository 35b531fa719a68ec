INSERT INTO sluice_workers (id, host_name, pid, version, task_types) VALUES (?1, ?2, ?3, ?4, ?5)
ON CONFLICT (id) DO UPDATE
   SET host_name = excluded.host_name, pid = excluded.pid, version = excluded.version,
       task_types = excluded.task_types, flow = NULL,
       started_at_ms = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER),
       last_seen_ms = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
