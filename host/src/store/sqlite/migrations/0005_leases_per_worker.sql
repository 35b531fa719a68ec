-- Leases move off the unit rows, claims get random tokens, and failed
-- batches narrow.
--
-- 1. A lease belongs to a host process: one row per worker in sluice_leases,
--    so a heartbeat writes one row however many units its host holds.
-- 2. claim_seq becomes claim_token, a random number per claim, so no two
--    claims of a unit ever share a fencing token.
-- 3. narrow_to and narrow_through: after a batch of several items failed, the
--    unit's next batches hold at most narrow_to items, none past
--    narrow_through, until the failing item is alone.

CREATE TABLE sluice_leases (
    worker     TEXT    PRIMARY KEY,
    expires_ms INTEGER NOT NULL
);
INSERT INTO sluice_leases (worker, expires_ms)
SELECT claimed_by, max(lease_expires_ms)
  FROM sluice_units
 WHERE claimed_by IS NOT NULL
 GROUP BY claimed_by;

DROP INDEX sluice_units_leases;
ALTER TABLE sluice_units DROP COLUMN lease_expires_ms;
ALTER TABLE sluice_units RENAME COLUMN claim_seq TO claim_token;
ALTER TABLE sluice_units ADD COLUMN narrow_to INTEGER;
ALTER TABLE sluice_units ADD COLUMN narrow_through INTEGER;

-- Units with nothing pending and no claim, for the reaper to delete once
-- their backoff is over (a unit row is recreated by the next enqueue).
CREATE INDEX sluice_units_empty ON sluice_units (available_at_ms)
    WHERE pending_count = 0 AND claimed_by IS NULL;
