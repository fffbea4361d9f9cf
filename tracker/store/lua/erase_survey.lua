-- Erase one survey and its answer, taking exactly what they added off every aggregate: the
-- reverse of record_answer.lua and mark_sent.lua, so a crash between surveys can be re-run.
-- KEYS: 1 survey, 2 response, 3 all responses, 4 all sent, 5 customer's responses, 6 customer's surveys,
--       7 erased counts (keeps the metrics' totals from going backwards),
--       8.. triples (aggregate hash, daily hash, index set): the response's entities, then the survey's
-- ARGV: 1 sid, 2 number of response entities, 3.. entity ids in KEYS order
-- Returns {survey removed, response removed, sent count removed}, each 0 or 1.
local sid = ARGV[1]
local nresp = tonumber(ARGV[2])
local touched = {}
local function entity(i) return KEYS[8 + 3 * (i - 1)], KEYS[9 + 3 * (i - 1)], KEYS[10 + 3 * (i - 1)], ARGV[2 + i] end
local nall = (#KEYS - 7) / 3

local removed = 0
local r = redis.call('HMGET', KEYS[2], 'rating', 'value6', 'satisfied', 'promoter', 'detractor', 'nps',
                     'weight', 'weighted', 'day')
if r[1] then
  local counts = {'value6', 'satisfied', 'promoter', 'detractor', 'nps'}
  for i = 1, nresp do
    local agg, daily = entity(i)
    redis.call('HINCRBY', agg, 'n', -1)
    for j, f in ipairs(counts) do redis.call('HINCRBY', agg, f, 0 - tonumber(r[1 + j])) end
    redis.call('HINCRBYFLOAT', agg, 'weight', 0 - tonumber(r[7]))
    redis.call('HINCRBYFLOAT', agg, 'weighted', 0 - tonumber(r[8]))
    if redis.call('HINCRBY', daily, r[9] .. ':n', -1) <= 0 then
      redis.call('HDEL', daily, r[9] .. ':n', r[9] .. ':v')
    else
      redis.call('HINCRBY', daily, r[9] .. ':v', 0 - tonumber(r[2]))
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
    redis.call('HINCRBY', agg, 'sent', -1)
    touched[#touched + 1] = i
  end
  unsent = 1
  redis.call('HINCRBY', KEYS[7], 'sent', 1)
end
local gone = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[6], sid)

-- An entity left with nothing counted is gone, as a rebuild would leave it.
for _, i in ipairs(touched) do
  local agg, daily, index, ident = entity(i)
  local left = redis.call('HMGET', agg, 'n', 'sent')
  if tonumber(left[1] or '0') <= 0 then
    redis.call('HSET', agg, 'weight', 0, 'weighted', 0)
    if tonumber(left[2] or '0') <= 0 then
      redis.call('DEL', agg, daily)
      redis.call('SREM', index, ident)
    end
  end
end
return {gone, removed, unsent}
