-- KEYS: pool keys, batch, then one key per item. ARGV: '1' to cancel running items too.
-- Some items of a batch become Cancelled, the batch itself goes on (no cancelled flag):
-- queued ones leave their lanes; running ones, when asked, lose their lease, so the
-- worker's renew fails and its completion is dropped. Finished and unknown items are left
-- as they are. Returns the number of items cancelled.
local batch = KEYS[7]
local running_too = ARGV[1] == '1'
local cancelled = 0
for i = 8, #KEYS do
  local item = KEYS[i]
  local f = redis.call('HMGET', item, 'state', 'lane')
  local state = f[1]
  if state == 'Queued' or (running_too and state == 'Running') then
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
