-- A worker that registers holds no claims yet: whatever is still claimed
-- under its id belongs to an earlier run of it. Hand those claims to an owner
-- that has no lease (the id with a suffix), so the reaper counts the attempt
-- and frees the units, instead of this run's heartbeats renewing them.
UPDATE sluice_units SET claimed_by = claimed_by || ' (previous run)' WHERE claimed_by = $1
