-- A worker that registers holds no claims yet: whatever is still claimed
-- under its id belongs to an earlier run of it. Expire those leases so the
-- reaper counts the attempt and frees the units, instead of this run's
-- heartbeats renewing them forever.
UPDATE sluice_units SET lease_expires_ms = 0 WHERE claimed_by = ?1
