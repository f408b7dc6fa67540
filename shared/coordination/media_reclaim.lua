-- Reconciler sweep: drop dead media workers with their reservations, and expired reservations
-- on live workers.
-- KEYS[1]  live workers sorted set (worker id -> heartbeat expiry, ms)
-- ARGV[1]  now_ms ('' = Redis server time)   ARGV[2] worker key prefix
-- ARGV[3]  reservations key suffix
-- Returns how many reservations were reclaimed (including those of dead workers).
local now_ms = tonumber(ARGV[1])
if not now_ms then
  local t = redis.call('TIME')
  now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local live = KEYS[1]
local prefix, suffix = ARGV[2], ARGV[3]

local reclaimed = 0
local dead = redis.call('ZRANGEBYSCORE', live, '-inf', now_ms)
for _, id in ipairs(dead) do
  reclaimed = reclaimed + redis.call('ZCARD', prefix .. id .. suffix)
  redis.call('DEL', prefix .. id, prefix .. id .. suffix)
end
if #dead > 0 then
  redis.call('ZREMRANGEBYSCORE', live, '-inf', now_ms)
end
for _, id in ipairs(redis.call('ZRANGE', live, 0, -1)) do
  reclaimed = reclaimed + redis.call('ZREMRANGEBYSCORE', prefix .. id .. suffix, '-inf', now_ms)
end
return reclaimed
