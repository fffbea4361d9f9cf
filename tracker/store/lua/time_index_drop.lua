-- Drop one entry (a sid at a time) from a time index (tracker.store.time_index): from the chunk whose lower bound
-- is the greatest at or below the entry, which the caller looked up in the directory just before; when another
-- writer moved the bounds since, nothing is written and the caller looks again. A chunk left empty leaves the
-- directory, but the first one, which stays (every entry has a chunk to go to).
-- KEYS: 1 the directory, 2 the chunk the caller found, 3 the state; all in the index's slot ({ix:<name>})
-- ARGV: 1 the directory member the caller found ('' for none), 2 the entry as the directory orders it,
--       3 time (ms), 4 sid, 5 the first chunk's directory member
-- Returns 1 when dropped, 0 when the index did not hold the entry (at that time), -1 when the bounds moved.
local dir, chunk, state = KEYS[1], KEYS[2], KEYS[3]
local found = redis.call('ZREVRANGEBYLEX', dir, '(' .. ARGV[2] .. '\n', '-', 'LIMIT', 0, 1)[1]
if found == nil then return ARGV[1] == '' and 0 or -1 end
if found ~= ARGV[1] then return -1 end
local was = redis.call('ZSCORE', chunk, ARGV[4])
if not was or tonumber(was) ~= tonumber(ARGV[3]) then return 0 end
redis.call('ZREM', chunk, ARGV[4])
redis.call('HINCRBY', state, 'count', -1)
if found ~= ARGV[5] and redis.call('EXISTS', chunk) == 0 then redis.call('ZREM', dir, found) end
return 1
