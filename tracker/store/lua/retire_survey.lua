-- Retention: delete one old survey and its answer while keeping what they counted. The live aggregates are
-- left as they are; the same sums are added to each entity's retired aggregate, which a rebuild adds back.
-- Same shape as erase_survey.lua (Python computes the increments from the stored answer; this script checks
-- the answer is still that one) but the increments are positive and go to the retired hashes.
-- KEYS: 1 survey, 2 response, 3 all responses, 4 all sent, 5 customer's responses, 6 customer's surveys,
--       7 erased-or-retired counts (keeps the metrics' totals from going back), 8 due zset, 9 retired index,
--       10.. pairs (retired aggregate, retired daily): the response's entities, then the survey's
-- ARGV: 1 sid, 2 cutoff (ms), 3 now (ms), 4 number of response entities, 5 the survey's reminder due member,
--       6.. "<kind>|<id>" of each entity in KEYS order, then five lists, each a count and that many pairs:
--       the stored response fields the sums assume; the answer's integer, float and daily increments;
--       the sent survey's integer increments.
-- Returns {survey removed, response removed, sent count retired}, -1 when the answer changed since it was
-- read (read again), -2 when something about the survey is not older than the cutoff or it is still open.
local sid, cutoff, now = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local nresp = tonumber(ARGV[4])
local nall = (#KEYS - 9) / 2
local pos = 6 + nall
local function pairs_list()
  local list = {}
  for i = 1, tonumber(ARGV[pos]) do list[i] = {ARGV[pos + 2 * i - 1], ARGV[pos + 2 * i]} end
  pos = pos + 1 + 2 * #list
  return list
end
local expect, ints, floats, daily, sent_ints = pairs_list(), pairs_list(), pairs_list(), pairs_list(), pairs_list()

local function newer(key, names)
  for _, name in ipairs(names) do
    local value = tonumber(redis.call('HGET', key, name) or '')
    if value and value >= cutoff then return true end
  end
  return false
end
if newer(KEYS[1], {'created_at', 'sent_at', 'answered_at', 'closed_at', 'replied_at', 'reminded_at'})
    or newer(KEYS[2], {'at', 'first_at', 'commented_at'}) then
  return -2
end
if tonumber(redis.call('HGET', KEYS[1], 'expires_at') or '0') >= now then return -2 end

local answered = redis.call('EXISTS', KEYS[2]) == 1
if answered then
  for _, p in ipairs(expect) do
    if (redis.call('HGET', KEYS[2], p[1]) or '') ~= p[2] then return -1 end
  end
end
local function entity(i) return KEYS[10 + 2 * (i - 1)], KEYS[11 + 2 * (i - 1)], ARGV[5 + i] end

local removed = 0
if answered then
  for i = 1, nresp do
    local agg, day_hash, member = entity(i)
    for _, p in ipairs(ints) do redis.call('HINCRBY', agg, p[1], p[2]) end
    for _, p in ipairs(floats) do redis.call('HINCRBYFLOAT', agg, p[1], p[2]) end
    for _, p in ipairs(daily) do redis.call('HINCRBY', day_hash, p[1], p[2]) end
    redis.call('SADD', KEYS[9], member)
  end
  removed = 1
  redis.call('HINCRBY', KEYS[7], 'answers', 1)
end
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[3], sid)
redis.call('ZREM', KEYS[5], sid)

-- mark_sent counted the survey once, exactly when it added it to the set of sent surveys.
local unsent = 0
if redis.call('ZREM', KEYS[4], sid) == 1 then
  for i = nresp + 1, nall do
    local agg, _, member = entity(i)
    for _, p in ipairs(sent_ints) do redis.call('HINCRBY', agg, p[1], p[2]) end
    redis.call('SADD', KEYS[9], member)
  end
  unsent = 1
  redis.call('HINCRBY', KEYS[7], 'sent', 1)
end
local gone = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[6], sid)
redis.call('ZREM', KEYS[8], ARGV[5])
return {gone, removed, unsent}
