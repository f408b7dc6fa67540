-- A half-open probe succeeded: the provider is healthy again fleet-wide (its record is deleted),
-- but only when the caller still holds the probe claim (a later failure report drops it).
-- KEYS[1]  the provider's health hash   ARGV[1] probe owner id
-- Returns 1 when restored, 0 otherwise.
if redis.call('HGET', KEYS[1], 'probe_owner') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
