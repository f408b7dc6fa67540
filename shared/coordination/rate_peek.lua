-- Read-only look at one recipient's sliding window: would one more dial now stay under the limit?
-- Writes nothing, not even a trim: entries older than the window are just not counted.
-- KEYS[1]  window sorted set (member -> dial time, ms)
-- ARGV[1]  now_ms ('' = Redis server time)   ARGV[2] limit   ARGV[3] window_ms
-- Returns {allowed 0|1, retry_after_ms, count inside the window}.
local now_ms = tonumber(ARGV[1])
if not now_ms then
  local t = redis.call('TIME')
  now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local limit = tonumber(ARGV[2])
local window_ms = tonumber(ARGV[3])

-- Inside the window means dialled strictly after now - window.
local floor = '(' .. (now_ms - window_ms)
local count = redis.call('ZCOUNT', KEYS[1], floor, '+inf')
if count < limit then
  return {1, 0, count}
end
-- Wait until the entry whose leaving brings the count under the limit has left
-- (the oldest one when count == limit).
local entry = redis.call('ZRANGEBYSCORE', KEYS[1], floor, '+inf', 'WITHSCORES',
  'LIMIT', count - limit, 1)
return {0, tonumber(entry[2]) + window_ms - now_ms, count}
