-- KEYS: pool keys. ARGV: now ('' = TIME), max attempts, limit.
-- Returns how many expired leases were taken back (requeued or failed).
return reclaim(num(now_ms(ARGV[1])), tonumber(ARGV[2]), tonumber(ARGV[3]))
