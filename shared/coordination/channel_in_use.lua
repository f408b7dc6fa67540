-- Count the unexpired channel leases on one outbound number. Read-only.
-- KEYS[1]  leases sorted set (token id -> lease expiry, ms)
-- ARGV[1]  now_ms ('' = Redis server time)
local now_ms = tonumber(ARGV[1])
if not now_ms then
  local t = redis.call('TIME')
  now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
return redis.call('ZCOUNT', KEYS[1], '(' .. now_ms, '+inf')
