-- The capacity gates of one dispatch in one atomic step, in DESIGN.md's order: rate-limit
-- peek, a channel token on the first number with one free, a media slot, then the rate-limit
-- record. It calls the very scripts the gates use one by one (rate_peek, channel_acquire,
-- media_reserve, rate_record), composed ahead of this body as local functions, so the rules
-- live in one place. Whatever an earlier gate took is given back before a refusal returns,
-- and a channel or media wait never writes to the rate window.
-- KEYS[1]  rate window   KEYS[2] live media workers   KEYS[3..] channel leases, one per number
-- ARGV[1]  now_ms ('' = Redis server time)   ARGV[2] rate limit   ARGV[3] window_ms
-- ARGV[4]  rate member (attempt id)   ARGV[5] lease_ms   ARGV[6] channel token id
-- ARGV[7]  reservation_ms   ARGV[8] reservation id   ARGV[9] worker key prefix
-- ARGV[10] reservations key suffix   ARGV[11..] max_channels, one per number (as KEYS[3..])
-- Returns {'admitted', number index (1-based), worker id, stream_url}, {'rate_limited',
-- retry_after_ms}, {'channels_busy'} or {'media_busy'}.
local now_ms = tonumber(ARGV[1])
if not now_ms then
  local t = redis.call('TIME')
  now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local rate_key, live_key = KEYS[1], KEYS[2]
local limit, window_ms, member = ARGV[2], ARGV[3], ARGV[4]

local peek = rate_peek({rate_key}, {now_ms, limit, window_ms})
if peek[1] == 0 then
  return {'rate_limited', peek[2]}
end

local number_index = nil
for i = 3, #KEYS do
  if channel_acquire({KEYS[i]}, {now_ms, ARGV[i + 8], ARGV[5], ARGV[6]}) == 1 then
    number_index = i - 2
    break
  end
end
if not number_index then
  return {'channels_busy'}
end
local lease_key = KEYS[number_index + 2]

local slot = media_reserve({live_key}, {now_ms, ARGV[7], ARGV[8], ARGV[9], ARGV[10]})
if not slot then
  redis.call('ZREM', lease_key, ARGV[6])
  return {'media_busy'}
end

local recorded = rate_record({rate_key}, {now_ms, limit, window_ms, member})
if recorded[1] == 0 then
  redis.call('ZREM', lease_key, ARGV[6])
  redis.call('ZREM', ARGV[9] .. slot[1] .. ARGV[10], ARGV[8])
  return {'rate_limited', recorded[2]}
end
return {'admitted', number_index, slot[1], slot[2]}
