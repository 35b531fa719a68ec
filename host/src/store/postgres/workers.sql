SELECT id, host_name, pid, version, started_at_ms, last_seen_ms, flow FROM sluice_workers ORDER BY id
