UPDATE sluice_items SET state = 'dead', finished_at_ms = sluice_now_ms() WHERE id = $1
