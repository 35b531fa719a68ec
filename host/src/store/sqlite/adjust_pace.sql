-- Moves shared pace ?1 by ?2 µs (a correction of an estimate, or a refund).
UPDATE sluice_budget_paces SET paid_until_us = paid_until_us + ?2 WHERE key = ?1
