-- KEYS: pool keys, batch, batch items.
-- Queued and running items become Cancelled; a running item leaves the lease set, so its
-- worker's renew fails and its completion is dropped. The flag keeps a later enqueue of
-- the same batch from bringing it back. Returns the number of items cancelled.
local batch, list = KEYS[7], KEYS[8]
redis.call('HSET', batch, 'cancelled', 1)
local cancelled = 0
for _, item in ipairs(redis.call('LRANGE', list, 0, -1)) do
  local f = redis.call('HMGET', item, 'state', 'lane')
  local state = f[1]
  if state == 'Queued' or state == 'Running' then
    if state == 'Queued' then
      redis.call('ZREM', f[2], item)
    else
      redis.call('ZREM', LEASES, item)
      redis.call('HDEL', item, 'token', 'worker', 'expires')
    end
    redis.call('HSET', item, 'state', 'Cancelled')
    move_count(batch, state, 'Cancelled')
    cancelled = cancelled + 1
  end
end
if cancelled > 0 then
  publish(batch, {state = 'Cancelled', count = cancelled})
end
return cancelled
