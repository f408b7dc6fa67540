-- Which voice a new call starts on, given one TTS provider's fleet-wide health hash.
-- healthy (no record): the provider. degraded, cooldown running or a live probe claim held by
-- another call: the fallback. degraded, cooldown over and no live claim: this call claims the
-- half-open probe (exactly one caller wins: the claim is written in the same script).
-- KEYS[1]  the provider's health hash
-- ARGV[1]  now_ms ('' = Redis server time)   ARGV[2] probe_lease_ms   ARGV[3] probe owner id
-- Returns 'healthy', 'degraded' or 'probe'.
local now_ms = tonumber(ARGV[1])
if not now_ms then
  local t = redis.call('TIME')
  now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local key = KEYS[1]
if redis.call('HGET', key, 'state') ~= 'degraded' then
  return 'healthy'
end
local until_ms = tonumber(redis.call('HGET', key, 'degraded_until_ms')) or 0
if now_ms < until_ms then
  return 'degraded'
end
local probe_until = tonumber(redis.call('HGET', key, 'probe_until_ms'))
if probe_until and probe_until > now_ms then
  return 'degraded'
end
local lease_ms = tonumber(ARGV[2])
redis.call('HSET', key, 'probe_owner', ARGV[3], 'probe_until_ms', now_ms + lease_ms)
-- The record must outlive the claim, or the claim would vanish with it.
local ttl = redis.call('PTTL', key)
if ttl >= 0 and ttl < lease_ms then
  redis.call('PEXPIRE', key, lease_ms)
end
return 'probe'
