-- Makes worker ?1's lease run at least ?2 ms more (claims take a lease).
INSERT INTO sluice_leases (worker, expires_ms) VALUES (?1, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) + ?2)
ON CONFLICT (worker) DO UPDATE SET expires_ms = max(expires_ms, excluded.expires_ms)
