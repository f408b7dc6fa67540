-- Drop the expired channel leases on one outbound number (holders that crashed or hung).
-- KEYS[1]  leases sorted set (token id -> lease expiry, ms)
-- ARGV[1]  now_ms ('' = Redis server time)
-- Returns how many leases were reclaimed.
local now_ms = tonumber(ARGV[1])
if not now_ms then
  local t = redis.call('TIME')
  now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
return redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
