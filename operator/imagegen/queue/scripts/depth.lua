-- KEYS: pool keys. ARGV: now ('' = TIME).
-- Returns {tenant, tier, priority, queued, age of the oldest in ms} for every non-empty
-- (lane, priority); lanes with queued items are always in their tier's ring.
local now = now_ms(ARGV[1])
local rows = {}
for _, tier in ipairs(TIERS) do
  for _, lane in ipairs(redis.call('LRANGE', RING[tier], 0, -1)) do
    for _, priority in ipairs(PRIORITIES) do
      local low = num(RANK[priority] * BAND)
      local high = '(' .. num((RANK[priority] + 1) * BAND)
      local oldest = redis.call('ZRANGEBYSCORE', lane, low, high, 'LIMIT', 0, 1)[1]
      if oldest then
        local f = redis.call('HMGET', oldest, 'tenant', 'enqueued')
        rows[#rows + 1] = {f[1], tier, priority, redis.call('ZCOUNT', lane, low, high),
          math.max(0, now - tonumber(f[2]))}
      end
    end
  end
end
return rows
