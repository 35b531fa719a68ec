SELECT count(*) FROM sluice_units WHERE claimed_by IS NOT NULL
