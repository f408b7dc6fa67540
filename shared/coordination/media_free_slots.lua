-- Sum the free call slots over live, non-draining media workers. Read-only: dead workers and
-- expired reservations are skipped, not removed.
-- KEYS[1]  live workers sorted set (worker id -> heartbeat expiry, ms)
-- ARGV[1]  now_ms ('' = Redis server time)   ARGV[2] worker key prefix
-- ARGV[3]  reservations key suffix
local now_ms = tonumber(ARGV[1])
if not now_ms then
  local t = redis.call('TIME')
  now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local prefix, suffix = ARGV[2], ARGV[3]
local after_now = '(' .. now_ms

local total = 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], after_now, '+inf')) do
  local info = redis.call('HMGET', prefix .. id, 'stream_url', 'slots', 'draining')
  if info[1] and info[3] ~= '1' then
    local held = redis.call('ZCOUNT', prefix .. id .. suffix, after_now, '+inf')
    total = total + math.max(tonumber(info[2]) - held, 0)
  end
end
return total
