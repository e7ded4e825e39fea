-- KEYS: pool keys, item. ARGV: token.
-- A worker that stops before finishing hands the item back: it returns to its lane in its
-- old place and the lease it had is not counted as an attempt, since the item never got a
-- fair try. Returns 1 when released, 0 when the lease is no longer this worker's.
local item = KEYS[7]
local f = redis.call('HMGET', item, 'state', 'token')
if f[1] ~= 'Running' or f[2] ~= ARGV[1] then
  return 0
end
redis.call('ZREM', LEASES, item)
redis.call('HDEL', item, 'token', 'worker', 'expires')
redis.call('HINCRBY', item, 'attempts', -1)
requeue(item)
return 1
