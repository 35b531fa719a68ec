SELECT sluice_now_ms()
