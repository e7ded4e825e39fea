-- KEYS: pool keys, batch, batch items.
-- Deletes the batch and its items whatever their state; a worker still holding one of
-- them finds it gone (renew and complete answer no). Returns the number of items deleted.
local batch, list = KEYS[7], KEYS[8]
local items = redis.call('LRANGE', list, 0, -1)
for _, item in ipairs(items) do
  local lane = redis.call('HGET', item, 'lane')
  if lane then
    redis.call('ZREM', lane, item)
  end
  redis.call('ZREM', LEASES, item)
  redis.call('DEL', item)
end
redis.call('DEL', batch, list)
return #items
