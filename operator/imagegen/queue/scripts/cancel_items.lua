-- KEYS: pool keys, batch, then one key per item. ARGV: '1' to cancel running items too.
-- Some items of a batch become Cancelled (`cancel_item`), the batch itself goes on: no
-- cancelled flag, so its other items and later enqueues are untouched. Returns the
-- number of items cancelled.
local batch = KEYS[7]
local running_too = ARGV[1] == '1'
local cancelled = 0
for i = 8, #KEYS do
  cancelled = cancelled + cancel_item(batch, KEYS[i], running_too)
end
if cancelled > 0 then
  publish(batch, {state = 'Cancelled', count = cancelled})
end
return cancelled
