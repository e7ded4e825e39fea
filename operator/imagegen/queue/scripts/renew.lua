-- KEYS: pool keys, item. ARGV: now ('' = TIME), lease ms, token.
-- Returns the new expiry, or nil when the lease is no longer this worker's.
local item = KEYS[7]
local f = redis.call('HMGET', item, 'state', 'token')
if f[1] ~= 'Running' or f[2] ~= ARGV[3] then
  return nil
end
local expires = num(now_ms(ARGV[1]) + tonumber(ARGV[2]))
redis.call('HSET', item, 'expires', expires)
redis.call('ZADD', LEASES, expires, item)
return expires
