-- KEYS: pool keys, batch, batch items.
-- Queued and running items become Cancelled (`cancel_item`). The flag keeps a later
-- enqueue of the same batch from bringing it back. Returns the number of items cancelled.
local batch, list = KEYS[7], KEYS[8]
redis.call('HSET', batch, 'cancelled', 1)
local cancelled = 0
for _, item in ipairs(redis.call('LRANGE', list, 0, -1)) do
  cancelled = cancelled + cancel_item(batch, item, true)
end
if cancelled > 0 then
  publish(batch, {state = 'Cancelled', count = cancelled})
end
return cancelled
