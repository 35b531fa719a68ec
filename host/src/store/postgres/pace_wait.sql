-- How many µs until shared pace $1 is paid off to within $2 µs of now.
SELECT greatest(paid_until_us - $2 - (extract(epoch FROM clock_timestamp()) * 1000000)::bigint, 0)
  FROM sluice_budget_paces WHERE key = $1
