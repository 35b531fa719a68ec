-- Releases the claims given as parallel arrays: unit ($1[i], $2[i]), claim
-- token $3[i] of worker $4[i]. A claim no longer held changes nothing.
-- Returns the released units and their claim tokens.
UPDATE sluice_units u
   SET claimed_by = NULL,
       available_at_ms = sluice_now_ms()
  FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[])
           AS r(task_type, work_unit_key, claim_token, worker)
 WHERE u.task_type = r.task_type AND u.work_unit_key = r.work_unit_key
   AND u.claim_token = r.claim_token AND u.claimed_by = r.worker
RETURNING u.task_type, u.work_unit_key, u.claim_token
