UPDATE sluice_workers SET draining_since_ms = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) WHERE id = ?1 AND draining_since_ms IS NULL
