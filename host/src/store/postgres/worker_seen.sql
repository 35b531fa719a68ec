UPDATE sluice_workers SET last_seen_ms = sluice_now_ms() WHERE id = $1
