-- Retention: delete one old survey (and the answer its hash holds) while keeping what they counted. The live
-- aggregates stay as they are; the appended outbox entry adds the same sums to each entity's retired sums, which
-- a rebuild adds back. Same shape as erase_survey.lua (Python computes the entry from the stored survey and
-- answer; this script checks they are still those), after checking that nothing about the survey is newer than
-- the cutoff.
-- KEYS: 1 survey, 2 the bucket's outbox, 3 its sequence, 4 the bucket's reminder due set, 5 the survey's
--       filing hash (tracker.store.filed)
-- ARGV: 1 cutoff (ms), 2 now (ms), 3 the reminder's due member, 4 the outbox entry (JSON), then a count and that
--       many field/value pairs ('' for absent): the stored fields the entry assumes.
-- Returns {survey removed, the hash held an answer, sent count retired, seq}, {-1} when the survey or its answer
-- changed since it was read (read again), {-2} when something about the survey is not older than the cutoff or
-- it is still open.
--#thaw
local s = KEYS[1]
thaw(s, KEYS[5])  -- a settled (or filed) survey's fields, read and compared below
local cutoff, now = tonumber(ARGV[1]), tonumber(ARGV[2])
-- created_at, sent_at, answered_at and first_at by their codes (tracker.store.survey_codes), as expires_at, rating
for _, name in ipairs({'ca', 'sn', 'aa', 'closed_at', 'replied_at', 'reminded_at', 'fa', 'commented_at'}) do
  local value = tonumber(redis.call('HGET', s, name) or '')
  if value and value >= cutoff then return {-2} end
end
if tonumber(redis.call('HGET', s, 'ex') or '0') >= now then return {-2} end
for i = 1, tonumber(ARGV[5]) do
  if (redis.call('HGET', s, ARGV[4 + 2 * i]) or '') ~= ARGV[5 + 2 * i] then return {-1} end
end
-- mark_sent counted the survey once, exactly when it wrote its send time.
local unsent = redis.call('HEXISTS', s, 'sn')
local answered = redis.call('HEXISTS', s, 'ra')
local gone = redis.call('DEL', s)
redis.call('ZREM', KEYS[4], ARGV[3])
local seq = redis.call('INCR', KEYS[3])
redis.call('ZADD', KEYS[2], seq, seq .. '|' .. ARGV[4])
return {gone, answered, unsent, seq}
