-- Inserts items without dedupe keys in one statement, in input order. ?1 is a
-- JSON array of [task_type, work_unit_key, payload (as a JSON string), tokens,
-- run_after_ms, delay_ms] (the last two NULL for an item that runs at once).
INSERT INTO sluice_items (task_type, work_unit_key, payload, tokens, run_after_ms)
SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'),
       json_extract(value, '$[2]'), json_extract(value, '$[3]'),
       coalesce(json_extract(value, '$[4]'),
                CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) + json_extract(value, '$[5]'))
  FROM json_each(?1)
 ORDER BY key
RETURNING id
