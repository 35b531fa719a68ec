-- Claims up to $5 ready units of the task types in $2 (with gates $3 min
-- tokens and $4 max wait ms, NULL when off) for worker $1, at most $7 of them
-- suspects (their last attempt timed out or trapped); paused task types
-- are skipped. Claim tokens are
-- $6 + 1, $6 + 2, ... ($6 is random, fresh for each call).
--
-- Per task type, an ordered walk of sluice_units_ready that stops at the
-- limit (LATERAL … LIMIT), so the cost does not depend on the backlog and
-- the plan does not depend on fresh statistics. SKIP LOCKED lets concurrent
-- claimers pass each other (and a producer's open transaction) instead of
-- queueing.
WITH candidates AS (
    SELECT c.task_type, c.work_unit_key, c.available_at_ms, c.suspect
      FROM unnest($2::text[], $3::bigint[], $4::bigint[]) AS g(task_type, min_tokens, max_wait_ms)
     CROSS JOIN LATERAL (
           SELECT u.task_type, u.work_unit_key, u.available_at_ms, u.suspect
             FROM sluice_units u
            WHERE u.task_type = g.task_type
              AND u.claimed_by IS NULL
              AND u.pending_count > 0
              AND u.available_at_ms <= sluice_now_ms()
              AND (NOT u.suspect OR $7 > 0)
              AND ((g.min_tokens IS NULL AND g.max_wait_ms IS NULL)
                   OR u.pending_tokens >= g.min_tokens
                   OR coalesce(u.oldest_pending_ms, 0) <= sluice_now_ms() - g.max_wait_ms)
            ORDER BY u.available_at_ms
            LIMIT $5
              FOR UPDATE OF u SKIP LOCKED
       ) c
     -- Paused task types (`sluice pause`) are not claimed.
     WHERE g.task_type NOT IN (SELECT task_type FROM sluice_paused)
), allowed AS (
    SELECT task_type, work_unit_key, available_at_ms
      FROM (SELECT *, row_number() OVER (PARTITION BY suspect ORDER BY available_at_ms) AS k
              FROM candidates) ranked
     WHERE NOT suspect OR k <= $7
), chosen AS (
    SELECT task_type, work_unit_key, row_number() OVER (ORDER BY available_at_ms) AS n
      FROM allowed ORDER BY available_at_ms LIMIT $5
)
UPDATE sluice_units u
   SET claimed_by = $1,
       claim_token = $6 + chosen.n,
       in_flight_from = NULL,
       in_flight_through = NULL
  FROM chosen
 WHERE u.task_type = chosen.task_type AND u.work_unit_key = chosen.work_unit_key
RETURNING u.task_type, u.work_unit_key, u.claim_token, u.suspect
