-- Record (or change) the answer to a survey and move every aggregate by the difference, once.
-- KEYS: 1 response, 2 survey, 3 customer's responses, 4 all responses, 5 profile, 6 customers by score,
--       7.. pairs of (aggregate hash, daily hash), one pair per entity, the customer's first
-- ARGV: 1 sid, 2 rating, 3 value6, 4 satisfied, 5 promoter, 6 detractor, 7 nps, 8 weight,
--       9 weighted value, 10 day, 11 at (ms), 12 comment, 13 scale, 14 customer email,
--       15.. extra field/value pairs
-- Returns 0 when nothing changed, 1 when only the comment (or the extra `reason`) changed,
-- 2 when the rating counted.
local r = KEYS[1]
local old = redis.call('HMGET', r, 'rating', 'comment', 'value6', 'satisfied', 'promoter',
                       'detractor', 'nps', 'weight', 'weighted', 'day')
if old[1] == ARGV[2] then
  local reason = nil
  for i = 15, #ARGV, 2 do if ARGV[i] == 'reason' then reason = ARGV[i + 1] end end
  local old_reason = redis.call('HGET', r, 'reason') or ''
  if old[2] == ARGV[12] and (reason == nil or reason == old_reason) then return 0 end
  redis.call('HSET', r, 'comment', ARGV[12], 'commented_at', ARGV[11])
  if reason ~= nil then redis.call('HSET', r, 'reason', reason) end
  return 1
end
local counts = {'value6', 'satisfied', 'promoter', 'detractor', 'nps'}
for i = 7, #KEYS, 2 do
  local agg, daily = KEYS[i], KEYS[i + 1]
  if old[1] then
    redis.call('HINCRBY', agg, 'n', -1)
    for j, f in ipairs(counts) do redis.call('HINCRBY', agg, f, 0 - tonumber(old[2 + j])) end
    redis.call('HINCRBYFLOAT', agg, 'weight', 0 - tonumber(old[8]))
    redis.call('HINCRBYFLOAT', agg, 'weighted', 0 - tonumber(old[9]))
    redis.call('HINCRBY', daily, old[10] .. ':n', -1)
    redis.call('HINCRBY', daily, old[10] .. ':v', 0 - tonumber(old[3]))
  end
  redis.call('HINCRBY', agg, 'n', 1)
  for j, f in ipairs(counts) do redis.call('HINCRBY', agg, f, tonumber(ARGV[2 + j])) end
  redis.call('HINCRBYFLOAT', agg, 'weight', ARGV[8])
  redis.call('HINCRBYFLOAT', agg, 'weighted', ARGV[9])
  redis.call('HINCRBY', daily, ARGV[10] .. ':n', 1)
  redis.call('HINCRBY', daily, ARGV[10] .. ':v', ARGV[3])
end
redis.call('HSET', r, 'sid', ARGV[1], 'rating', ARGV[2], 'value6', ARGV[3], 'satisfied', ARGV[4],
           'promoter', ARGV[5], 'detractor', ARGV[6], 'nps', ARGV[7], 'weight', ARGV[8],
           'weighted', ARGV[9], 'day', ARGV[10], 'at', ARGV[11], 'comment', ARGV[12], 'scale', ARGV[13])
if not old[1] then redis.call('HSET', r, 'first_at', ARGV[11]) end
for i = 15, #ARGV, 2 do redis.call('HSET', r, ARGV[i], ARGV[i + 1]) end
redis.call('HINCRBY', r, 'changes', 1)
redis.call('ZADD', KEYS[3], ARGV[11], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[11], ARGV[1])
redis.call('HSET', KEYS[2], 'status', 'answered', 'answered_at', ARGV[11])
-- Keep customers ranked by their decayed score for the at-risk listing.
local sums = redis.call('HMGET', KEYS[7], 'weighted', 'weight', 'n')
if tonumber(sums[3]) > 0 and tonumber(sums[2]) > 0 then
  redis.call('ZADD', KEYS[6], tonumber(sums[1]) / tonumber(sums[2]), ARGV[14])
end
local last = tonumber(redis.call('HGET', KEYS[5], 'last_response_at') or '-1')
if tonumber(ARGV[11]) >= last then
  redis.call('HSET', KEYS[5], 'last_response_at', ARGV[11], 'last_response_sid', ARGV[1])
end
return 2
