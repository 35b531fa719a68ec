-- Claims whose lease ran out, oldest first.
SELECT task_type, work_unit_key, claim_seq, claimed_by FROM sluice_units
 WHERE claimed_by IS NOT NULL AND lease_expires_ms < CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
 ORDER BY lease_expires_ms
 LIMIT ?1
