-- Records worker $1's flow report (JSON: its LLM breakers and spend).
UPDATE sluice_workers SET flow = $2 WHERE id = $1
