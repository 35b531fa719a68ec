-- Extends worker ?1's lease to ?2 ms from now.
INSERT INTO sluice_leases (worker, expires_ms) VALUES (?1, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) + ?2)
ON CONFLICT (worker) DO UPDATE SET expires_ms = excluded.expires_ms
