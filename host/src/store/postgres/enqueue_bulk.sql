-- Inserts items without dedupe keys in one statement, in input order (the
-- identity column then numbers them in that order).
INSERT INTO sluice_items (task_type, work_unit_key, payload, tokens)
SELECT t, k, p::jsonb, n
  FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) WITH ORDINALITY AS x(t, k, p, n, ord)
 ORDER BY ord
RETURNING id
