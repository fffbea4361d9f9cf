-- Record one delivery attempt of a notice bucket and move its target on, while the dispatcher holds the lease.
-- KEYS: 1 lease, 2 cursors (hash), 3 retry states (hash), 4 delivery records (list), 5 their counter,
--       6 attempts by status (hash), 7 each target's last recorded attempt (hash): all one notice bucket
-- ARGV: 1 lease token ('': a redelivery by an operator, which moves no cursor), 2 lease lifetime (ms),
--       3 target name, 4 'pass' (the cursor passes the entry, its retry state goes), 'retry' (the retry state is
--       set) or 'none', 5 the stream entry, 6 the retry state (JSON), 7 the record (a JSON object, '' for none),
--       8 its status, 9 how many records the list keeps, 10 the bucket, 11 the attempt's token ('': none)
-- Returns {delivery id ('' when no record), 1 when the lease is held (or none is needed), else 0}. A dispatcher
-- that lost its lease still records the attempt it made, but moves nothing: the new holder goes on from the cursor.
-- The same attempt recorded again (its first call applied, its reply lost to an outage) returns its record's id and
-- writes no second record: the cursor's move is the same either way.
local function before(a, b)
  local ams, aseq = string.match(a, '^(%d+)-(%d+)$')
  local bms, bseq = string.match(b, '^(%d+)-(%d+)$')
  ams, aseq, bms, bseq = tonumber(ams), tonumber(aseq), tonumber(bms), tonumber(bseq)
  return ams < bms or (ams == bms and aseq < bseq)
end
local held = 1
if ARGV[1] ~= '' then
  if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    if ARGV[4] == 'pass' then
      local cursor = redis.call('HGET', KEYS[2], ARGV[3])
      if not cursor or before(cursor, ARGV[5]) then
        redis.call('HSET', KEYS[2], ARGV[3], ARGV[5])
      end
      redis.call('HDEL', KEYS[3], ARGV[3])
    elseif ARGV[4] == 'retry' then
      redis.call('HSET', KEYS[3], ARGV[3], ARGV[6])
    end
  else
    held = 0
  end
end
local id = ''
if ARGV[7] ~= '' and ARGV[11] ~= '' then
  local last = redis.call('HGET', KEYS[7], ARGV[3])
  if last and string.sub(last, 1, #ARGV[11] + 1) == ARGV[11] .. ' ' then
    return {string.sub(last, #ARGV[11] + 2), held}
  end
end
if ARGV[7] ~= '' then
  id = 'd' .. ARGV[10] .. '.' .. redis.call('INCR', KEYS[5])
  if ARGV[11] ~= '' then
    redis.call('HSET', KEYS[7], ARGV[3], ARGV[11] .. ' ' .. id)
  end
  redis.call('LPUSH', KEYS[4], '{"id":"' .. id .. '",' .. string.sub(ARGV[7], 2))
  redis.call('LTRIM', KEYS[4], 0, tonumber(ARGV[9]) - 1)
  redis.call('HINCRBY', KEYS[6], ARGV[8], 1)
end
return {id, held}
