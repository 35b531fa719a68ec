-- Inserts items without dedupe keys in one statement, in input order (the
-- identity column then numbers them in that order). Each may first run at its
-- $5 (ms) or its $6 ms from now, or at once (both NULL).
INSERT INTO sluice_items (task_type, work_unit_key, payload, tokens, run_after_ms)
SELECT t, k, p::jsonb, n, coalesce(a, sluice_now_ms() + d)
  FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[])
       WITH ORDINALITY AS x(t, k, p, n, a, d, ord)
 ORDER BY ord
RETURNING id
