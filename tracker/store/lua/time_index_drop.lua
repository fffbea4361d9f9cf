-- Drop entries (sids at times) from a time index (tracker.store.time_index): all of them fall in the chunk whose
-- lower bound is the greatest at or below them, which the caller looked up in the directory just before; when
-- another writer moved the bounds since, nothing is written and the caller looks again. An entry held at another
-- time than named stays. A chunk left empty leaves the directory, but the first one, which stays (every entry has
-- a chunk to go to).
-- KEYS: 1 the directory, 2 the state, 3 the chunk the caller found; all in the index's slot ({ix:<name>})
-- ARGV: 1 the directory member the caller found ('' for none), 2 the first chunk's directory member, then per
--       entry: the entry as the directory orders it, time (ms), sid
-- Returns how many entries were dropped, or -1 when the bounds moved (look again).
local dir, state, chunk = KEYS[1], KEYS[2], KEYS[3]
local function covering(entry)
  return redis.call('ZREVRANGEBYLEX', dir, '(' .. entry .. '\n', '-', 'LIMIT', 0, 1)[1]
end
local low, high = covering(ARGV[3]), covering(ARGV[#ARGV - 2])
if low == nil and high == nil then return ARGV[1] == '' and 0 or -1 end
if low ~= ARGV[1] or high ~= ARGV[1] then return -1 end
local dropped = 0
for i = 3, #ARGV, 3 do
  local was = redis.call('ZSCORE', chunk, ARGV[i + 2])
  if was and tonumber(was) == tonumber(ARGV[i + 1]) then
    redis.call('ZREM', chunk, ARGV[i + 2])
    dropped = dropped + 1
  end
end
if dropped > 0 then
  redis.call('HINCRBY', state, 'count', -dropped)
  if ARGV[1] ~= ARGV[2] and redis.call('EXISTS', chunk) == 0 then redis.call('ZREM', dir, ARGV[1]) end
end
return dropped
