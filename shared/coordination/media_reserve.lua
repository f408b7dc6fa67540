-- Reserve one call slot on the live, non-draining media worker with the most free slots.
-- Dead workers (heartbeat expired) are dropped with everything they held; expired reservations
-- are trimmed; free = slots - unexpired reservations.
-- Per-worker keys are derived from the live set's members: prefix .. id and prefix .. id .. suffix
-- (the affixes come from shared/redis_keys.py), so this script is for a single Redis, not Cluster.
-- KEYS[1]  live workers sorted set (worker id -> heartbeat expiry, ms)
-- ARGV[1]  now_ms ('' = Redis server time)   ARGV[2] reservation_ms   ARGV[3] reservation id
-- ARGV[4]  worker key prefix   ARGV[5] reservations key suffix
-- Returns {worker id, stream_url}, or nil when no live worker has a free slot.
local now_ms = tonumber(ARGV[1])
if not now_ms then
  local t = redis.call('TIME')
  now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local live = KEYS[1]
local prefix, suffix = ARGV[4], ARGV[5]

local dead = redis.call('ZRANGEBYSCORE', live, '-inf', now_ms)
for _, id in ipairs(dead) do
  redis.call('DEL', prefix .. id, prefix .. id .. suffix)
end
if #dead > 0 then
  redis.call('ZREMRANGEBYSCORE', live, '-inf', now_ms)
end

-- Freshest heartbeat first, so that on a tie the worker most surely alive wins.
local best_id, best_url, best_free = nil, nil, 0
for _, id in ipairs(redis.call('ZREVRANGE', live, 0, -1)) do
  local info = redis.call('HMGET', prefix .. id, 'stream_url', 'slots', 'draining')
  if info[1] and info[3] ~= '1' then
    local reservations = prefix .. id .. suffix
    redis.call('ZREMRANGEBYSCORE', reservations, '-inf', now_ms)
    local free = tonumber(info[2]) - redis.call('ZCARD', reservations)
    if free > best_free then
      best_id, best_url, best_free = id, info[1], free
    end
  end
end
if not best_id then
  return false
end

local reservations = prefix .. best_id .. suffix
redis.call('ZADD', reservations, now_ms + tonumber(ARGV[2]), ARGV[3])
local last = redis.call('ZRANGE', reservations, -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', reservations, tonumber(last[2]) - now_ms)
return {best_id, best_url}
