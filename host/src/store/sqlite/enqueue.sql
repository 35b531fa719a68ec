INSERT INTO sluice_items (task_type, work_unit_key, payload, tokens, dedupe_key)
VALUES (?1, ?2, ?3, ?4, ?5)
ON CONFLICT (task_type, dedupe_key) WHERE state = 'pending' AND dedupe_key IS NOT NULL DO NOTHING
RETURNING id
