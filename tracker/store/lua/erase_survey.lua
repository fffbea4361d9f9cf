-- Erase one survey and its answer, taking exactly what they added off every aggregate: the
-- reverse of record_answer.lua and mark_sent.lua, so a crash between surveys can be re-run.
-- Python computes what to take off (the stored answer's sums, negated, and one sent survey's);
-- this script checks the stored answer is still the one read, then applies the increments.
-- KEYS: 1 survey, 2 response, 3 all responses, 4 all sent, 5 customer's responses, 6 customer's surveys,
--       7 erased counts (keeps the metrics' totals from going backwards),
--       8.. triples (aggregate hash, daily hash, index set): the response's entities, then the survey's
-- ARGV: 1 sid, 2 number of response entities, 3.. entity ids in KEYS order, then seven lists, each a
--       count and that many pairs: the stored response fields the answer's sums assume; the answer's
--       integer, float and daily increments; the sent survey's integer increments; the fields that say
--       an entity still counts something (with '' as their second); (count field, float field) pairs:
--       a float sum is set to 0 when its count reaches 0 (no rounding residue where a rebuild has none).
-- Returns {survey removed, response removed, sent count removed}, each 0 or 1, or -1 when the stored
-- answer changed since it was read (read again and retry).
local sid = ARGV[1]
local nresp = tonumber(ARGV[2])
local nall = (#KEYS - 7) / 3
local pos = 3 + nall
local function pairs_list()
  local list = {}
  for i = 1, tonumber(ARGV[pos]) do list[i] = {ARGV[pos + 2 * i - 1], ARGV[pos + 2 * i]} end
  pos = pos + 1 + 2 * #list
  return list
end
local expect, ints, floats, daily = pairs_list(), pairs_list(), pairs_list(), pairs_list()
local sent_ints, alive, residue = pairs_list(), pairs_list(), pairs_list()
local function entity(i) return KEYS[8 + 3 * (i - 1)], KEYS[9 + 3 * (i - 1)], KEYS[10 + 3 * (i - 1)], ARGV[2 + i] end

local answered = redis.call('EXISTS', KEYS[2]) == 1
if answered then
  for _, p in ipairs(expect) do
    if (redis.call('HGET', KEYS[2], p[1]) or '') ~= p[2] then return -1 end
  end
end
local touched = {}
local removed = 0
if answered then
  for i = 1, nresp do
    local agg, day_hash = entity(i)
    for _, p in ipairs(ints) do redis.call('HINCRBY', agg, p[1], p[2]) end
    for _, p in ipairs(floats) do redis.call('HINCRBYFLOAT', agg, p[1], p[2]) end
    for _, p in ipairs(daily) do
      if redis.call('HINCRBY', day_hash, p[1], p[2]) == 0 then redis.call('HDEL', day_hash, p[1]) end
    end
    touched[#touched + 1] = i
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
    local agg = entity(i)
    for _, p in ipairs(sent_ints) do redis.call('HINCRBY', agg, p[1], p[2]) end
    touched[#touched + 1] = i
  end
  unsent = 1
  redis.call('HINCRBY', KEYS[7], 'sent', 1)
end
local gone = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[6], sid)

-- An entity left with nothing counted is gone, as a rebuild would leave it.
for _, i in ipairs(touched) do
  local agg, day_hash, index, ident = entity(i)
  for _, p in ipairs(residue) do
    if tonumber(redis.call('HGET', agg, p[1]) or '0') <= 0 then redis.call('HSET', agg, p[2], 0) end
  end
  local empty = true
  for _, p in ipairs(alive) do
    if tonumber(redis.call('HGET', agg, p[1]) or '0') > 0 then empty = false end
  end
  if empty then
    redis.call('DEL', agg, day_hash)
    redis.call('SREM', index, ident)
  end
end
return {gone, removed, unsent}
