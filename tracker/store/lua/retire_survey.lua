-- Retention: delete one old survey and its answer while keeping what they counted. The live aggregates stay as
-- they are; the appended outbox entry adds the same sums to each entity's retired sums, which a rebuild adds back.
-- Same shape as erase_survey.lua (Python computes the entry from the stored survey and answer; this script
-- checks they are still those), after checking that nothing about the survey is newer than the cutoff.
-- KEYS: 1 survey, 2 response, 3 the bucket's outbox, 4 its sequence, 5 the bucket's reminder due set
-- ARGV: 1 cutoff (ms), 2 now (ms), 3 the reminder's due member, 4 the outbox entry (JSON), then two lists,
--       each a count and that many field/value pairs ('' for absent): the stored survey fields and the stored
--       response fields the entry assumes.
-- Returns {survey removed, response removed, sent count retired, seq}, {-1} when the survey or the answer
-- changed since it was read (read again), {-2} when something about the survey is not older than the cutoff
-- or it is still open.
local cutoff, now = tonumber(ARGV[1]), tonumber(ARGV[2])
local pos = 5
local function pairs_list()
  local list = {}
  for i = 1, tonumber(ARGV[pos]) do list[i] = {ARGV[pos + 2 * i - 1], ARGV[pos + 2 * i]} end
  pos = pos + 1 + 2 * #list
  return list
end
local expect_survey, expect_response = pairs_list(), pairs_list()

local function newer(key, names)
  for _, name in ipairs(names) do
    local value = tonumber(redis.call('HGET', key, name) or '')
    if value and value >= cutoff then return true end
  end
  return false
end
if newer(KEYS[1], {'created_at', 'sent_at', 'answered_at', 'closed_at', 'replied_at', 'reminded_at'})
    or newer(KEYS[2], {'at', 'first_at', 'commented_at'}) then
  return {-2}
end
if tonumber(redis.call('HGET', KEYS[1], 'expires_at') or '0') >= now then return {-2} end
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
redis.call('ZREM', KEYS[5], ARGV[3])
local seq = redis.call('INCR', KEYS[4])
redis.call('ZADD', KEYS[3], seq, seq .. '|' .. ARGV[4])
return {gone, removed, unsent, seq}
