-- The claims worker ?1 holds.
SELECT task_type, work_unit_key, claim_token FROM sluice_units WHERE claimed_by = ?1
