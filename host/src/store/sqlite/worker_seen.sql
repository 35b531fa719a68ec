UPDATE sluice_workers SET last_seen_ms = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) WHERE id = ?1
