-- KEYS: pool keys. ARGV: now, max attempts, limit.
-- Returns how many expired leases were taken back (requeued or failed).
return reclaim(ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]))
