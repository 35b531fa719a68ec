-- Extends worker $1's lease to $2 ms from now and records that it is alive;
-- returns the claims it holds. The claims are read, not locked: a unit row a
-- producer's transaction holds never delays a heartbeat.
WITH lease AS (
    INSERT INTO sluice_leases AS l (worker, expires_ms) VALUES ($1, sluice_now_ms() + $2)
    ON CONFLICT (worker) DO UPDATE SET expires_ms = EXCLUDED.expires_ms
), seen AS (
    UPDATE sluice_workers SET last_seen_ms = sluice_now_ms() WHERE id = $1
)
SELECT task_type, work_unit_key, claim_token FROM sluice_units WHERE claimed_by = $1
