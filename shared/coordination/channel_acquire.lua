-- Take one channel token on an outbound number if fewer than max_channels leases are live.
-- Drops expired leases first, so a crashed holder's channel comes back on its own.
-- KEYS[1]  leases sorted set (token id -> lease expiry, ms)
-- ARGV[1]  now_ms ('' = Redis server time)   ARGV[2] max_channels   ARGV[3] lease_ms
-- ARGV[4]  token id to add
-- Returns 1 when the token was added, 0 when every channel is taken.
local now_ms = tonumber(ARGV[1])
if not now_ms then
  local t = redis.call('TIME')
  now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local key = KEYS[1]

redis.call('ZREMRANGEBYSCORE', key, '-inf', now_ms)
if redis.call('ZCARD', key) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', key, now_ms + tonumber(ARGV[3]), ARGV[4])
-- The key lives as long as its longest lease.
local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', key, tonumber(last[2]) - now_ms)
return 1
