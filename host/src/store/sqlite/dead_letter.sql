UPDATE sluice_items SET state = 'dead', finished_at_ms = CAST(unixepoch('subsec') * 1000 AS INTEGER) WHERE id = ?1
