INSERT INTO sluice_outputs (task_type, work_unit_key, item_ids, output, call) VALUES ($1, $2, $3, $4::jsonb, $5::jsonb)
