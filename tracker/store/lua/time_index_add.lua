-- Add entries (sids at times) to a time index (tracker.store.time_index): all of them fall in the chunk whose
-- lower bound is the greatest at or below them, which the caller looked up in the directory just before; when
-- another writer moved the bounds since (a split, a dropped chunk), nothing is written and the caller looks again.
-- A chunk grown past the chunk size splits into one of the fresh chunks the caller names: an entry added at the end
-- of the chunk it went to starts the next chunk alone (times mostly arrive in order, so the chunk left behind stays
-- full), else the chunk's upper half moves. The caller names as many fresh chunks as the entries can need.
-- KEYS: 1 the directory, 2 the state, 3 the chunk the caller found, 4... fresh chunks; all in the index's slot
-- ARGV: 1 the directory member the caller found ("<bound>\t<chunk id>"; the first chunk's when there was none),
--       2 the first chunk's directory member, 3 the chunk size, 4 'NX' to leave a sid the chunk holds where it is
--       ('' moves it to the time given), then per fresh chunk its id, then per entry in ascending order: the entry
--       as the directory orders it ("<time, 15 digits>:<sid>"), time (ms), sid
-- Returns {added, done}: how many entries were added (not held already) and how many of them were seen (the rest,
-- when the fresh chunks ran out, wait for the caller's next call), or {-1, 0} when the bounds moved (look again).
local dir, state = KEYS[1], KEYS[2]
local member, first, size_max = ARGV[1], ARGV[2], tonumber(ARGV[3])
local only_new = ARGV[4] == 'NX'
local fresh_count = #KEYS - 3
local entries_from = 5 + fresh_count
local function covering(entry)
  return redis.call('ZREVRANGEBYLEX', dir, '(' .. entry .. '\n', '-', 'LIMIT', 0, 1)[1]
end
local low, high = covering(ARGV[entries_from]), covering(ARGV[#ARGV - 2])
if low == nil and high == nil then
  if member ~= first then return {-1, 0} end
  redis.call('ZADD', dir, 0, first)
elseif low ~= member or high ~= member then
  return {-1, 0}
end
-- The chunks this call writes to, by bound: the one found, then those its splits make.
local chunks = {{bound = '', key = KEYS[3]}}
local fresh = 0
local added, done = 0, 0
for i = entries_from, #ARGV, 3 do
  local entry, at, sid = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local target = chunks[1]
  for _, chunk in ipairs(chunks) do
    if chunk.bound <= entry then target = chunk end
  end
  if fresh >= fresh_count and redis.call('ZCARD', target.key) >= size_max then break end  -- no chunk left to split to
  done = done + 1
  local placed_new
  if only_new then placed_new = redis.call('ZADD', target.key, 'NX', at, sid) else placed_new = redis.call('ZADD', target.key, at, sid) end
  if placed_new == 1 then
    added = added + 1
    local size = redis.call('ZCARD', target.key)
    if size > size_max then
      fresh = fresh + 1
      local from = math.floor(size / 2)
      if redis.call('ZRANK', target.key, sid) == size - 1 then from = size - 1 end
      local moved = redis.call('ZRANGE', target.key, from, -1, 'WITHSCORES')
      local args = {}
      for j = 1, #moved, 2 do
        args[#args + 1] = moved[j + 1]
        args[#args + 1] = moved[j]
      end
      local key = KEYS[3 + fresh]
      redis.call('ZADD', key, unpack(args))
      redis.call('ZREMRANGEBYRANK', target.key, from, -1)
      local time = moved[2]
      local bound = string.rep('0', 15 - #time) .. time .. ':' .. moved[1]
      redis.call('ZADD', dir, 0, bound .. '\t' .. ARGV[4 + fresh])
      local placed = false
      for j, chunk in ipairs(chunks) do
        if not placed and chunk.bound > bound then
          table.insert(chunks, j, {bound = bound, key = key})
          placed = true
        end
      end
      if not placed then chunks[#chunks + 1] = {bound = bound, key = key} end
    end
  end
end
if added > 0 then redis.call('HINCRBY', state, 'count', added) end
return {added, done}
