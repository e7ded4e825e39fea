-- KEYS: pool keys, batch, batch items.
-- Returns {batch hash as a flat list, {id, state, attempts, result, error} per item}.
local batch, list = KEYS[7], KEYS[8]
local items = {}
for _, item in ipairs(redis.call('LRANGE', list, 0, -1)) do
  items[#items + 1] = redis.call('HMGET', item, 'id', 'state', 'attempts', 'result', 'error')
end
return {redis.call('HGETALL', batch), items}
