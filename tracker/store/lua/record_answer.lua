-- Record (or change) the answer to a survey and move every aggregate by the difference, once.
-- Python computes the difference (new answer's sums minus the stored answer's); this script only
-- checks that the stored answer is still the one that difference was computed from, then applies it.
-- KEYS: 1 response, 2 survey, 3 customer's responses, 4 all responses, 5 profile, 6 customers by score,
--       7.. pairs of (aggregate hash, daily hash), one pair per entity, the customer's first
-- ARGV: 1 sid, 2 rating, 3 at (ms), 4 comment, 5 reason, 6 '1' when a reason is given ('0' keeps the stored one),
--       7 customer email, 8-10 the score's numerator, denominator and count fields (for the ranking),
--       then five lists, each a count and that many field/value pairs:
--       the stored fields the difference assumes ('' for absent), the response's fields to write,
--       and the difference as integer, float and daily increments.
-- Returns 0 when nothing changed, 1 when only the comment (or the reason) changed, 2 when the rating
-- counted, -1 when another answer came in first (read again and retry).
local r = KEYS[1]
local rating, at, comment = ARGV[2], ARGV[3], ARGV[4]
local has_reason = ARGV[6] == '1'

local pos = 11
-- Each list as (first ARGV index, last ARGV index) of its flat pairs.
local function span()
  local first, count = pos + 1, tonumber(ARGV[pos])
  pos = pos + 1 + 2 * count
  return first, first + 2 * count - 1
end
local expect_from, expect_to = span()
local fields_from, fields_to = span()
local ints_from, ints_to = span()
local floats_from, floats_to = span()
local daily_from, daily_to = span()

if redis.call('HGET', r, 'rating') == rating then
  local old_comment = redis.call('HGET', r, 'comment')
  local old_reason = redis.call('HGET', r, 'reason') or ''
  if old_comment == comment and (not has_reason or ARGV[5] == old_reason) then return 0 end
  redis.call('HSET', r, 'comment', comment, 'commented_at', at)
  if has_reason then redis.call('HSET', r, 'reason', ARGV[5]) end
  return 1
end
local first = true
for j = expect_from, expect_to, 2 do
  local have = redis.call('HGET', r, ARGV[j])
  if (have or '') ~= ARGV[j + 1] then return -1 end
  if have then first = false end
end

for i = 7, #KEYS, 2 do
  for j = ints_from, ints_to, 2 do redis.call('HINCRBY', KEYS[i], ARGV[j], ARGV[j + 1]) end
  for j = floats_from, floats_to, 2 do redis.call('HINCRBYFLOAT', KEYS[i], ARGV[j], ARGV[j + 1]) end
  -- A day bucket that drops to zero goes, as a rebuild would not write it.
  for j = daily_from, daily_to, 2 do
    if redis.call('HINCRBY', KEYS[i + 1], ARGV[j], ARGV[j + 1]) == 0 then redis.call('HDEL', KEYS[i + 1], ARGV[j]) end
  end
end
redis.call('HSET', r, unpack(ARGV, fields_from, fields_to))
if first then redis.call('HSET', r, 'first_at', at) end
redis.call('HINCRBY', r, 'changes', 1)
redis.call('ZADD', KEYS[3], at, ARGV[1])
redis.call('ZADD', KEYS[4], at, ARGV[1])
redis.call('HSET', KEYS[2], 'status', 'answered', 'answered_at', at)
-- Keep customers ranked by their decayed score for the at-risk listing.
local sums = redis.call('HMGET', KEYS[7], ARGV[8], ARGV[9], ARGV[10])
if tonumber(sums[3] or '0') > 0 and tonumber(sums[2] or '0') > 0 then
  redis.call('ZADD', KEYS[6], tonumber(sums[1] or '0') / tonumber(sums[2]), ARGV[7])
end
local last = tonumber(redis.call('HGET', KEYS[5], 'last_response_at') or '-1')
if tonumber(at) >= last then
  redis.call('HSET', KEYS[5], 'last_response_at', at, 'last_response_sid', ARGV[1])
end
return 2
