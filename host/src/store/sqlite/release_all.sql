-- Releases the claims in ?1, a JSON array of [task_type, work_unit_key,
-- claim token, worker]. A claim no longer held changes nothing. Returns the
-- released units and their claim tokens.
UPDATE sluice_units
   SET claimed_by = NULL,
       available_at_ms = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
  FROM (SELECT json_extract(value, '$[0]') AS task_type,
               json_extract(value, '$[1]') AS work_unit_key,
               json_extract(value, '$[2]') AS token,
               json_extract(value, '$[3]') AS worker
          FROM json_each(?1)) AS r
 WHERE sluice_units.task_type = r.task_type AND sluice_units.work_unit_key = r.work_unit_key
   AND sluice_units.claim_token = r.token AND sluice_units.claimed_by = r.worker
RETURNING task_type, work_unit_key, claim_token
