-- KEYS: pool keys. ARGV: now ('' = TIME), lease ms, max attempts, worker, token, reclaim limit.
-- Returns {uid, id, tenant, tier, priority, payload, attempts, expires, previous error}
-- or nil; the previous error (false when none) is why an earlier lease ended.
local now, lease_ms, max_attempts = now_ms(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local worker, token = ARGV[4], ARGV[5]

-- Leases of workers that died come back before anything is chosen, so no sweeper process
-- is needed for the queue to heal.
reclaim(num(now), max_attempts, tonumber(ARGV[6]))

-- Deficit round robin over the tier's ring: the head lane takes items while its deficit
-- lasts; then it is credited its weight and rotated to the tail. Empty lanes leave the
-- ring and forfeit their deficit. Each pass either serves, drops an empty lane, or credits
-- a lane to at least 1, so 2n + 2 steps always suffice.
local function pick(tier)
  local ring = RING[tier]
  for _ = 1, 2 * redis.call('LLEN', ring) + 2 do
    local lane = redis.call('LINDEX', ring, 0)
    if not lane then
      return nil
    end
    if redis.call('ZCARD', lane) == 0 then
      leave(tier, lane)
    else
      local deficit = tonumber(redis.call('HGET', DEFICIT, lane)) or 0
      if deficit >= 1 then
        local item = redis.call('ZPOPMIN', lane)[1]
        if redis.call('ZCARD', lane) == 0 then
          leave(tier, lane)
        else
          redis.call('HSET', DEFICIT, lane, deficit - 1)
        end
        return item
      end
      local weight = tonumber(redis.call('HGET', WEIGHT, lane)) or 1
      redis.call('HSET', DEFICIT, lane, deficit + weight)
      redis.call('LMOVE', ring, ring, 'LEFT', 'RIGHT')
    end
  end
  return nil
end

-- Strict priority: the standard ring is looked at only when the priority ring is empty.
for _, tier in ipairs(TIERS) do
  local item = pick(tier)
  if item then
    local expires = num(now + lease_ms)
    local attempts = redis.call('HINCRBY', item, 'attempts', 1)
    redis.call('HSET', item, 'state', 'Running', 'token', token, 'worker', worker,
      'expires', expires)
    redis.call('ZADD', LEASES, expires, item)
    local f = redis.call('HMGET', item, 'batch', 'uid', 'id', 'tenant', 'tier', 'priority',
      'payload', 'error')
    move_count(f[1], 'Queued', 'Running')
    publish_item(item, 'Running')
    -- false, not nil: a nil would end the reply array here.
    return {f[2], f[3], f[4], f[5], f[6], f[7], attempts, expires, f[8] or false}
  end
end
return nil
