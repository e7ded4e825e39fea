-- KEYS: pool keys, item. ARGV: token, error, retryable (1 or 0), max attempts.
-- Returns 'requeued', 'failed', or 'dropped' when the lease is no longer this worker's
-- (expired and taken back, cancelled, or finished by another delivery).
local item = KEYS[7]
local f = redis.call('HMGET', item, 'state', 'token')
if f[1] ~= 'Running' or f[2] ~= ARGV[1] then
  return 'dropped'
end
return retry_or_fail(item, ARGV[2], ARGV[3] == '1', tonumber(ARGV[4]))
