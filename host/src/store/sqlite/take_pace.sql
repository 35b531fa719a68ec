-- Takes ?2 µs of shared pace ?1 when it is paid off to within ?3 µs of now
-- (one row back); otherwise changes nothing (no row).
INSERT INTO sluice_budget_paces AS p (key, paid_until_us)
VALUES (?1, CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER) + ?2)
ON CONFLICT (key) DO UPDATE
   SET paid_until_us = max(p.paid_until_us, CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)) + ?2
 WHERE p.paid_until_us - ?3 <= CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)
RETURNING 1
