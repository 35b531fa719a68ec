SELECT to_regclass('sluice_items') IS NOT NULL
