-- KEYS: pool keys, item. ARGV: result JSON.
-- The first result wins, whichever lease delivered it (a worker whose lease expired may
-- still finish first): 1 when stored, 0 when the item was already finished or cancelled.
local item = KEYS[7]
local f = redis.call('HMGET', item, 'state', 'lane', 'batch')
local state, lane, batch = f[1], f[2], f[3]
if state ~= 'Queued' and state ~= 'Running' then
  return 0
end
if state == 'Queued' then
  redis.call('ZREM', lane, item)
else
  redis.call('ZREM', LEASES, item)
end
redis.call('HSET', item, 'state', 'Succeeded', 'result', ARGV[1])
redis.call('HDEL', item, 'token', 'worker', 'expires', 'error')
move_count(batch, state, 'Succeeded')
publish_item(item, 'Succeeded')
return 1
