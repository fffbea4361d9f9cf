-- Record (or change) the answer to a survey in the survey's own hash and append what it does to every aggregate
-- to the bucket's outbox. Python computes the outbox entry from the stored answer (the new answer's sums minus
-- the stored one's); this script only checks that the stored answer is still the one the entry was computed
-- from, then writes both.
-- The answer's fields in the survey's hash: rating and what it counted (value6, satisfied, promoter, detractor,
-- nps, weight, weighted, day), comment, commented_at, answer_reason (the follow-up reason the customer picked;
-- the survey's own `reason` says why it was skipped or failed), first_at, changes; answered_at is the latest
-- rating's time; extra holds the answers to a custom survey's extra questions (JSON). An empty comment, reason
-- or extra is no field at all. The fields every answer has are stored by their codes (tracker.store.survey_codes):
-- ra rating, fa first_at, cg changes, st status, aa answered_at; the sums by Python's names for them.
-- An answer whose rating counts and calls for an alert holds that alert in the bucket's held alerts (by the time of
-- the answer) in the same script, so it is sent even if the process that recorded it dies now (tracker.alerts.held).
-- KEYS: 1 survey, 2 the bucket's outbox, 3 its sequence, 4 the survey's filing hash, 5 the bucket's held alerts (all
--       in the survey's slot)
-- ARGV: 1 rating, 2 at (ms), 3 comment, 4 reason, 5 '1' when a reason is given ('0' keeps the stored one),
--       6 the outbox entry (JSON; '' for a test survey, which counts nowhere), 7 '1' when extra answers are given
--       ('0' keeps the stored ones), 8 the extra answers (JSON, '' for none), 9 the entry of a change of the
--       comment, reason or extra answers alone (JSON: its forwarder tells survey.changed, and its steps move an
--       unsatisfied answer from its old reason's count to the new one's; '' none), 10 the alert to hold when the
--       rating counts ("<sid>|<rating>"; '' none),
--       then two lists, each a count and that many field/value pairs: the stored fields the entry assumes ('' for
--       absent), and the answer's fields to write (its rating and sums).
-- Returns {outcome, seq}: outcome 0 when nothing changed (or the survey is gone), 1 when only the comment, the
-- reason or the extra answers changed (seq names its entry, 0 for none), 2 when the rating counted (seq names
-- its outbox entry, 0 for none), -1 when another answer came in first (read again and retry).
--#thaw
local s = KEYS[1]
local rating, at, comment = ARGV[1], ARGV[2], ARGV[3]
local has_reason = ARGV[5] == '1'
local has_extra = ARGV[7] == '1'

local function append(entry)
  if entry == '' then return 0 end
  local seq = redis.call('INCR', KEYS[3])
  redis.call('ZADD', KEYS[2], seq, seq .. '|' .. entry)
  return seq
end

local pos = 11
-- Each list as (first ARGV index, last ARGV index) of its flat pairs.
local function span()
  local first, count = pos + 1, tonumber(ARGV[pos])
  pos = pos + 1 + 2 * count
  return first, first + 2 * count - 1
end
local expect_from, expect_to = span()
local fields_from, fields_to = span()

local function put(name, value)
  if value == '' then redis.call('HDEL', s, name) else redis.call('HSET', s, name, value) end
end

thaw(s, KEYS[4])  -- an answer imported for a settled (or filed) survey changes its fields
if redis.call('EXISTS', s) == 0 then return {0, 0} end
local stored = redis.call('HGET', s, 'ra')
if stored == rating then
  local old_comment = redis.call('HGET', s, 'comment') or ''
  local old_reason = redis.call('HGET', s, 'answer_reason') or ''
  local old_extra = redis.call('HGET', s, 'extra') or ''
  if old_comment == comment and (not has_reason or ARGV[4] == old_reason)
      and (not has_extra or ARGV[8] == old_extra) then return {0, 0} end
  -- A new reason's entry moves the answer between the reasons' counts: it holds only if computed from this one.
  if has_reason and ARGV[4] ~= old_reason then
    for j = expect_from, expect_to, 2 do
      if (redis.call('HGET', s, ARGV[j]) or '') ~= ARGV[j + 1] then return {-1, 0} end
    end
  end
  put('comment', comment)
  redis.call('HSET', s, 'commented_at', at)
  if has_reason then put('answer_reason', ARGV[4]) end
  if has_extra then put('extra', ARGV[8]) end
  return {1, append(ARGV[9])}
end
for j = expect_from, expect_to, 2 do
  if (redis.call('HGET', s, ARGV[j]) or '') ~= ARGV[j + 1] then return {-1, 0} end
end

redis.call('HSET', s, unpack(ARGV, fields_from, fields_to))
put('comment', comment)
if has_reason then put('answer_reason', ARGV[4]) end
if has_extra then put('extra', ARGV[8]) end
if not stored then redis.call('HSET', s, 'fa', at) end
redis.call('HINCRBY', s, 'cg', 1)
redis.call('HSET', s, 'st', 'answered', 'aa', at)
if ARGV[10] ~= '' then redis.call('ZADD', KEYS[5], at, ARGV[10]) end
return {2, append(ARGV[6])}
