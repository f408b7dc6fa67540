-- Extend a lease (a channel token or a media slot reservation) that is still held. An expired
-- lease is not revived: what it held may already be counted as free by another taker, so it
-- is dropped and the holder told it lost it.
-- KEYS[1]  leases sorted set (lease id -> expiry, ms)
-- ARGV[1]  now_ms ('' = Redis server time)   ARGV[2] lease_ms   ARGV[3] lease id
-- Returns 1 when renewed, 0 when the lease is gone.
local now_ms = tonumber(ARGV[1])
if not now_ms then
  local t = redis.call('TIME')
  now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local key = KEYS[1]
local lease_id = ARGV[3]

local expiry = redis.call('ZSCORE', key, lease_id)
if not expiry then
  return 0
end
if tonumber(expiry) <= now_ms then
  redis.call('ZREM', key, lease_id)
  return 0
end
redis.call('ZADD', key, 'XX', now_ms + tonumber(ARGV[2]), lease_id)
local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', key, tonumber(last[2]) - now_ms)
return 1
