-- Takes $2 µs of shared pace $1 when it is paid off to within $3 µs of now
-- (one row back); otherwise changes nothing (no row).
INSERT INTO sluice_budget_paces AS p (key, paid_until_us)
VALUES ($1, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint + $2)
ON CONFLICT (key) DO UPDATE
   SET paid_until_us = greatest(p.paid_until_us, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint) + $2
 WHERE p.paid_until_us - $3 <= (extract(epoch FROM clock_timestamp()) * 1000000)::bigint
RETURNING 1
