-- Prepended to every script by imagegen/queue/lua.py. KEYS[1..6] are the pool keys in the
-- order of keys.Keyspace.pool_keys(); a script's own keys follow. Times are Unix ms from
-- Redis TIME, one clock for every worker and operator whatever their hosts' clocks say; a
-- caller may pass its own instead (tests move time that way), '' means TIME.
local RING = {priority = KEYS[1], standard = KEYS[2]}
local DEFICIT = KEYS[3]
local WEIGHT = KEYS[4]
local LEASES = KEYS[5]
local SEQ = KEYS[6]
local TIERS = {'priority', 'standard'}
local PRIORITIES = {'high', 'normal', 'low'}
local RANK = {high = 0, normal = 1, low = 2}
-- A lane scores its items rank * BAND + seq: one ZSET per tenant then serves high before
-- normal before low and first-in first-out within each, exactly (below 2^53) in a double.
local BAND = 17592186044416

-- Integers as plain digits: Lua would print large ones in exponent form.
local function num(value)
  return string.format('%.0f', value)
end

local function now_ms(given)
  if given ~= nil and given ~= '' then
    return tonumber(given)
  end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function move_count(batch, from, to)
  redis.call('HINCRBY', batch, from, -1)
  redis.call('HINCRBY', batch, to, 1)
end

-- On the pool's channel, naming the batch (a batch enqueued before its hash kept its uid
-- names none until its next enqueue).
local function publish(batch, message)
  local f = redis.call('HMGET', batch, 'channel', 'uid')
  if f[1] then
    if f[2] then
      message.batch = f[2]
    end
    redis.call('SPUBLISH', f[1], cjson.encode(message))
  end
end

local function publish_item(item, state)
  local f = redis.call('HMGET', item, 'batch', 'id', 'attempts')
  publish(f[1], {item = f[2], state = state, attempts = tonumber(f[3])})
end

-- A lane is in its tier's ring exactly when DEFICIT has a field for it, so a lane emptied
-- by a cancel and refilled later is never listed twice. A joining lane starts with one
-- quantum, so it is served on its first turn.
local function join(tier, lane)
  if redis.call('HEXISTS', DEFICIT, lane) == 0 then
    redis.call('RPUSH', RING[tier], lane)
    redis.call('HSET', DEFICIT, lane, redis.call('HGET', WEIGHT, lane) or 1)
  end
end

-- Only ever called for the lane at the head of the ring.
local function leave(tier, lane)
  redis.call('LPOP', RING[tier])
  redis.call('HDEL', DEFICIT, lane)
end

-- A queued item leaves its lane, a running one (when `running_too`) its lease, so its
-- worker's renew fails and its completion is dropped; either becomes Cancelled. Finished
-- and unknown items are left as they are. Returns 1 when the item was cancelled, else 0.
local function cancel_item(batch, item, running_too)
  local f = redis.call('HMGET', item, 'state', 'lane')
  local state = f[1]
  if state == 'Queued' then
    redis.call('ZREM', f[2], item)
  elseif state == 'Running' and running_too then
    redis.call('ZREM', LEASES, item)
    redis.call('HDEL', item, 'token', 'worker', 'expires')
  else
    return 0
  end
  redis.call('HSET', item, 'state', 'Cancelled')
  move_count(batch, state, 'Cancelled')
  return 1
end

-- A running item whose lease has been dropped goes back to its lane with the same score,
-- so it keeps its place.
local function requeue(item)
  local f = redis.call('HMGET', item, 'lane', 'batch', 'tier', 'score')
  local lane, batch, tier, score = f[1], f[2], f[3], f[4]
  redis.call('HSET', item, 'state', 'Queued')
  redis.call('ZADD', lane, score, item)
  join(tier, lane)
  move_count(batch, 'Running', 'Queued')
  publish_item(item, 'Queued')
end

-- A running item goes back to its lane or, without attempts left or when the error is
-- final, fails; either way keeping `err` as its last error.
local function retry_or_fail(item, err, retryable, max_attempts)
  local f = redis.call('HMGET', item, 'batch', 'attempts')
  local batch, attempts = f[1], tonumber(f[2])
  redis.call('ZREM', LEASES, item)
  redis.call('HDEL', item, 'token', 'worker', 'expires')
  redis.call('HSET', item, 'error', err)
  if retryable and attempts < max_attempts then
    requeue(item)
    return 'requeued'
  end
  redis.call('HSET', item, 'state', 'Failed')
  move_count(batch, 'Running', 'Failed')
  publish_item(item, 'Failed')
  return 'failed'
end

local function reclaim(now, max_attempts, limit)
  local expired = redis.call('ZRANGEBYSCORE', LEASES, '-inf', now, 'LIMIT', 0, limit)
  for _, item in ipairs(expired) do
    retry_or_fail(item, 'lease expired', true, max_attempts)
  end
  return #expired
end
