-- Stores the outputs in ?1, a JSON array of [task_type, work_unit_key,
-- item ids (a JSON array as text), output or null, call record], in order.
INSERT INTO sluice_outputs (task_type, work_unit_key, item_ids, output, call)
SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'),
       json_extract(value, '$[3]'), json_extract(value, '$[4]')
  FROM json_each(?1)
 ORDER BY key
