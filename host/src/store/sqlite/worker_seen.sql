UPDATE sluice_workers SET last_seen_ms = CAST(unixepoch('subsec') * 1000 AS INTEGER) WHERE id = ?1
