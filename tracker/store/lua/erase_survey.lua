-- Erase one survey and its answer and append "take off exactly what they added" to the bucket's outbox:
-- the reverse of record_answer.lua and mark_sent.lua, so a crash between surveys can be re-run.
-- Python computes the entry from the stored survey and answer; this script checks both are still the ones
-- read, then deletes them (and the survey's reminder) and appends the entry.
-- KEYS: 1 survey, 2 response, 3 the bucket's outbox, 4 its sequence, 5 the bucket's reminder due set
-- ARGV: 1 the reminder's due member, 2 the outbox entry (JSON), then two lists, each a count and that many
--       field/value pairs ('' for absent): the stored survey fields and the stored response fields the entry
--       assumes.
-- Returns {survey removed, response removed, sent count removed, seq}, or {-1} when the survey or the answer
-- changed since it was read (read again and retry).
local pos = 3
local function pairs_list()
  local list = {}
  for i = 1, tonumber(ARGV[pos]) do list[i] = {ARGV[pos + 2 * i - 1], ARGV[pos + 2 * i]} end
  pos = pos + 1 + 2 * #list
  return list
end
local expect_survey, expect_response = pairs_list(), pairs_list()
for _, p in ipairs(expect_survey) do
  if (redis.call('HGET', KEYS[1], p[1]) or '') ~= p[2] then return {-1} end
end
for _, p in ipairs(expect_response) do
  if (redis.call('HGET', KEYS[2], p[1]) or '') ~= p[2] then return {-1} end
end
-- mark_sent counted the survey once, exactly when it wrote its send time.
local unsent = redis.call('HEXISTS', KEYS[1], 'sent_at')
local removed = redis.call('DEL', KEYS[2])
local gone = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[5], ARGV[1])
local seq = redis.call('INCR', KEYS[4])
redis.call('ZADD', KEYS[3], seq, seq .. '|' .. ARGV[2])
return {gone, removed, unsent, seq}
