UPDATE sluice_items SET state = 'dead', finished_at_ms = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) WHERE id = ?1
