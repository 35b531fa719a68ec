-- Inserts items without dedupe keys in one statement, in input order. ?1 is a
-- JSON array of [task_type, work_unit_key, payload (as a JSON string), tokens].
INSERT INTO sluice_items (task_type, work_unit_key, payload, tokens)
SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'),
       json_extract(value, '$[2]'), json_extract(value, '$[3]')
  FROM json_each(?1)
 ORDER BY key
RETURNING id
