-- KEYS: pool keys, batch, batch items, lane, then one key per item.
-- ARGV: uid, tenant, tier, priority, weight, now ('' = TIME), channel, then id and payload per item.
-- Returns the number of items newly queued; known items and cancelled batches add none.
local batch, list, lane = KEYS[7], KEYS[8], KEYS[9]
local uid, tenant, tier, priority, weight, given_now, channel = unpack(ARGV, 1, 7)
local now = num(now_ms(given_now))
if redis.call('HGET', batch, 'cancelled') == '1' then
  return 0
end
if redis.call('HEXISTS', batch, 'tenant') == 0 then
  redis.call('HSET', batch, 'tenant', tenant, 'tier', tier, 'priority', priority,
    'cancelled', 0, 'total', 0, 'Queued', 0, 'Running', 0,
    'Succeeded', 0, 'Failed', 0, 'Cancelled', 0)
end
-- Every time: a batch enqueued by an older operator moves to the pool's channel.
redis.call('HSET', batch, 'uid', uid, 'channel', channel)
redis.call('HSET', WEIGHT, lane, weight)
local added = 0
for i = 10, #KEYS do
  local item = KEYS[i]
  if redis.call('EXISTS', item) == 0 then
    local a = 8 + (i - 10) * 2
    local score = num(RANK[priority] * BAND + redis.call('INCR', SEQ))
    redis.call('HSET', item, 'uid', uid, 'id', ARGV[a], 'tenant', tenant, 'tier', tier,
      'priority', priority, 'lane', lane, 'batch', batch, 'score', score,
      'payload', ARGV[a + 1], 'state', 'Queued', 'attempts', 0, 'enqueued', now)
    redis.call('ZADD', lane, score, item)
    redis.call('RPUSH', list, item)
    added = added + 1
  end
end
if added > 0 then
  redis.call('HINCRBY', batch, 'total', added)
  redis.call('HINCRBY', batch, 'Queued', added)
  join(tier, lane)
  publish(batch, {state = 'Queued', count = added})
end
return added
