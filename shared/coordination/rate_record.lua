-- Atomically record one dial for a recipient if it stays under the limit.
-- Trims entries that left the window, counts, adds `member` only under the limit, and keeps the
-- key alive exactly as long as its newest entry is inside the window. Idempotent per member.
-- KEYS[1]  window sorted set (member -> dial time, ms)
-- ARGV[1]  now_ms ('' = Redis server time)   ARGV[2] limit   ARGV[3] window_ms   ARGV[4] member
-- Returns {allowed 0|1, retry_after_ms, count inside the window after this call}.
local now_ms = tonumber(ARGV[1])
if not now_ms then
  local t = redis.call('TIME')
  now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local key = KEYS[1]
local limit = tonumber(ARGV[2])
local window_ms = tonumber(ARGV[3])
local member = ARGV[4]

redis.call('ZREMRANGEBYSCORE', key, '-inf', now_ms - window_ms)
local count = redis.call('ZCARD', key)
if redis.call('ZSCORE', key, member) then
  -- Already recorded (a redelivered task): admitted once, never counted twice.
  return {1, 0, count}
end
if count < limit then
  redis.call('ZADD', key, now_ms, member)
  local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  redis.call('PEXPIRE', key, math.max(tonumber(newest[2]) - now_ms, 0) + window_ms)
  return {1, 0, count + 1}
end
local entry = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
return {0, tonumber(entry[2]) + window_ms - now_ms, count}
