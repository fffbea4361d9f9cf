-- Erase one survey (and the answer its hash holds) and append "take off exactly what they added" to the bucket's
-- outbox: the reverse of record_answer.lua and mark_sent.lua, so a crash between surveys can be re-run.
-- Python computes the entry from the stored survey and answer; this script checks they are still the ones
-- read, then deletes the hash (and the survey's reminder) and appends the entry.
-- KEYS: 1 survey, 2 the bucket's outbox, 3 its sequence, 4 the bucket's reminder due set, 5 the survey's
--       filing hash (tracker.store.filed)
-- ARGV: 1 the reminder's due member, 2 the outbox entry (JSON), then a count and that many field/value pairs
--       ('' for absent): the stored fields the entry assumes.
-- Returns {survey removed, the hash held an answer, sent count removed, seq}, or {-1} when the survey or its
-- answer changed since it was read (read again and retry).
--#thaw
local s = KEYS[1]
thaw(s, KEYS[5])  -- a settled (or filed) survey's fields, compared below
for i = 1, tonumber(ARGV[3]) do
  if (redis.call('HGET', s, ARGV[2 + 2 * i]) or '') ~= ARGV[3 + 2 * i] then return {-1} end
end
-- mark_sent counted the survey once, exactly when it wrote its send time.
local unsent = redis.call('HEXISTS', s, 'sn')  -- sent_at (tracker.store.survey_codes)
local answered = redis.call('HEXISTS', s, 'ra')  -- rating
local gone = redis.call('DEL', s)
redis.call('ZREM', KEYS[4], ARGV[1])
local seq = redis.call('INCR', KEYS[3])
redis.call('ZADD', KEYS[2], seq, seq .. '|' .. ARGV[2])
return {gone, answered, unsent, seq}
