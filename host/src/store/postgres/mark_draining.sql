UPDATE sluice_workers SET draining_since_ms = sluice_now_ms() WHERE id = $1 AND draining_since_ms IS NULL
