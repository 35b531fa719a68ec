-- How many µs until shared pace ?1 is paid off to within ?2 µs of now.
SELECT max(paid_until_us - ?2 - CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER), 0)
  FROM sluice_budget_paces WHERE key = ?1
