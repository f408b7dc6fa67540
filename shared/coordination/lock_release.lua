-- Delete a lock only if it still holds this holder's token (compare-and-delete), so a holder
-- whose lock expired can never delete the lock another holder took since.
-- KEYS[1]  lock key   ARGV[1] the holder's token
-- Returns 1 when deleted, 0 when the lock was gone or someone else's.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
