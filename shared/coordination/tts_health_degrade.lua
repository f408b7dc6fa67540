-- Mark one TTS provider degraded fleet-wide: one atomic update of its health hash, with a TTL.
-- A provider already degraded stays so with the later of the two cooldown ends (a failed
-- half-open probe lands here too, which extends the cooldown); any probe claim is dropped.
-- KEYS[1]  the provider's health hash (shared/redis_keys.py provider_health)
-- ARGV[1]  now_ms ('' = Redis server time)   ARGV[2] cooldown_ms   ARGV[3] record_ttl_ms
-- ARGV[4]  reason   ARGV[5] reporter (a media worker id; never a phone number)
-- The hash lives until the cooldown ends plus record_ttl_ms; gone means healthy.
-- Returns {flipped (1: it was healthy until now, 0: already degraded), degraded_until_ms}.
local now_ms = tonumber(ARGV[1])
if not now_ms then
  local t = redis.call('TIME')
  now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local key = KEYS[1]
local was_degraded = redis.call('HGET', key, 'state') == 'degraded'
local until_ms = now_ms + tonumber(ARGV[2])
local previous = tonumber(redis.call('HGET', key, 'degraded_until_ms'))
if was_degraded and previous and previous > until_ms then
  until_ms = previous
end
redis.call('HSET', key, 'state', 'degraded', 'degraded_until_ms', until_ms,
  'reason', ARGV[4], 'reported_by', ARGV[5], 'updated_ms', now_ms)
redis.call('HDEL', key, 'probe_owner', 'probe_until_ms')
local flipped = 0
if not was_degraded then
  flipped = 1
  redis.call('HSET', key, 'degraded_since_ms', now_ms)
  redis.call('HINCRBY', key, 'flips', 1)
end
redis.call('PEXPIRE', key, until_ms - now_ms + tonumber(ARGV[3]))
return {flipped, until_ms}
