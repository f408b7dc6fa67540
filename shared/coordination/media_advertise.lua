-- Heartbeat of one media worker: it is live until now + heartbeat_ms, with this capacity.
-- KEYS[1]  live workers sorted set (worker id -> heartbeat expiry, ms)
-- KEYS[2]  the worker's hash (stream_url, slots, draining)
-- ARGV[1]  now_ms ('' = Redis server time)   ARGV[2] heartbeat_ms   ARGV[3] worker id
-- ARGV[4]  stream_url   ARGV[5] slots   ARGV[6] draining ('1' or '0')
local now_ms = tonumber(ARGV[1])
if not now_ms then
  local t = redis.call('TIME')
  now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local heartbeat_ms = tonumber(ARGV[2])

redis.call('ZADD', KEYS[1], now_ms + heartbeat_ms, ARGV[3])
redis.call('HSET', KEYS[2], 'stream_url', ARGV[4], 'slots', ARGV[5], 'draining', ARGV[6])
redis.call('PEXPIRE', KEYS[2], heartbeat_ms)
return 1
