-- Record (or change) the answer to a survey and append what it does to every aggregate to the bucket's outbox.
-- Python computes the outbox entry from the stored answer (the new answer's sums minus the stored one's); this
-- script only checks that the stored answer is still the one the entry was computed from, then writes both.
-- KEYS: 1 response, 2 survey, 3 the bucket's outbox, 4 its sequence (all in the survey's slot)
-- ARGV: 1 rating, 2 at (ms), 3 comment, 4 reason, 5 '1' when a reason is given ('0' keeps the stored one),
--       6 the outbox entry (JSON), then two lists, each a count and that many field/value pairs: the stored
--       fields the entry assumes ('' for absent), and the response's fields to write.
-- Returns {outcome, seq}: outcome 0 when nothing changed (or the survey is gone), 1 when only the comment (or
-- the reason) changed, 2 when the rating counted (seq names its outbox entry), -1 when another answer came in
-- first (read again and retry).
local r, s = KEYS[1], KEYS[2]
local rating, at, comment = ARGV[1], ARGV[2], ARGV[3]
local has_reason = ARGV[5] == '1'

local pos = 7
-- Each list as (first ARGV index, last ARGV index) of its flat pairs.
local function span()
  local first, count = pos + 1, tonumber(ARGV[pos])
  pos = pos + 1 + 2 * count
  return first, first + 2 * count - 1
end
local expect_from, expect_to = span()
local fields_from, fields_to = span()

if redis.call('EXISTS', s) == 0 then return {0, 0} end
if redis.call('HGET', r, 'rating') == rating then
  local old_comment = redis.call('HGET', r, 'comment')
  local old_reason = redis.call('HGET', r, 'reason') or ''
  if old_comment == comment and (not has_reason or ARGV[4] == old_reason) then return {0, 0} end
  redis.call('HSET', r, 'comment', comment, 'commented_at', at)
  if has_reason then redis.call('HSET', r, 'reason', ARGV[4]) end
  return {1, 0}
end
local first = true
for j = expect_from, expect_to, 2 do
  local have = redis.call('HGET', r, ARGV[j])
  if (have or '') ~= ARGV[j + 1] then return {-1, 0} end
  if have then first = false end
end

redis.call('HSET', r, unpack(ARGV, fields_from, fields_to))
if first then redis.call('HSET', r, 'first_at', at) end
redis.call('HINCRBY', r, 'changes', 1)
redis.call('HSET', s, 'status', 'answered', 'answered_at', at)
local seq = redis.call('INCR', KEYS[4])
redis.call('ZADD', KEYS[3], seq, seq .. '|' .. ARGV[6])
return {2, seq}
