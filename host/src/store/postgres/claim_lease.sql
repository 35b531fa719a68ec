-- Makes worker $1's lease run at least $2 ms more (claims take a lease).
INSERT INTO sluice_leases AS l (worker, expires_ms) VALUES ($1, sluice_now_ms() + $2)
ON CONFLICT (worker) DO UPDATE SET expires_ms = GREATEST(l.expires_ms, EXCLUDED.expires_ms)
