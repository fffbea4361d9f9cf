-- Add one entry (a sid at a time) to a time index (tracker.store.time_index): into the chunk whose lower bound is
-- the greatest at or below the entry, which the caller looked up in the directory just before; when another writer
-- moved the bounds since (a split, a dropped chunk), nothing is written and the caller looks again. A chunk grown
-- past the chunk size is split: an entry added at its end starts the next chunk alone (times mostly arrive in
-- order, so the chunk left behind stays full), else its upper half moves to the fresh chunk.
-- KEYS: 1 the directory, 2 the chunk the caller found, 3 a fresh chunk (used only by a split), 4 the state;
--       all in the index's slot ({ix:<name>})
-- ARGV: 1 the directory member the caller found ("<bound>\t<chunk id>"; the first chunk's when there was none),
--       2 the entry as the directory orders it ("<time, 15 digits>:<sid>"), 3 time (ms), 4 sid, 5 the chunk size,
--       6 the fresh chunk's id, 7 the first chunk's directory member
-- Returns 1 when added, 0 when the chunk held the entry already, -1 when the bounds moved (look again).
local dir, chunk, fresh, state = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local found = redis.call('ZREVRANGEBYLEX', dir, '(' .. ARGV[2] .. '\n', '-', 'LIMIT', 0, 1)[1]
if found == nil then
  if ARGV[1] ~= ARGV[7] then return -1 end
  redis.call('ZADD', dir, 0, ARGV[7])
elseif found ~= ARGV[1] then
  return -1
end
local was = redis.call('ZSCORE', chunk, ARGV[4])
if was and tonumber(was) == tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', chunk, ARGV[3], ARGV[4])
if not was then redis.call('HINCRBY', state, 'count', 1) end
local size = redis.call('ZCARD', chunk)
if size <= tonumber(ARGV[5]) then return 1 end
local from = math.floor(size / 2)
if redis.call('ZRANK', chunk, ARGV[4]) == size - 1 then from = size - 1 end
local moved = redis.call('ZRANGE', chunk, from, -1, 'WITHSCORES')
local args = {}
for i = 1, #moved, 2 do
  args[#args + 1] = moved[i + 1]
  args[#args + 1] = moved[i]
end
redis.call('ZADD', fresh, unpack(args))
redis.call('ZREMRANGEBYRANK', chunk, from, -1)
local time = moved[2]
redis.call('ZADD', dir, 0, string.rep('0', 15 - #time) .. time .. ':' .. moved[1] .. '\t' .. ARGV[6])
return 1
