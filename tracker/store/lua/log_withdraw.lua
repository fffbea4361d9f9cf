-- Withdraw a portion just appended for a delivery marked before under other shards (another body, same id),
-- unless an applier may have read it: its shard's lease is held, or the cursor is at or past its first entry.
-- KEYS[1] lease, KEYS[2] progress (cursor hash), KEYS[3] stream, KEYS[4] portion mark
-- ARGV[1..] the portion's entry ids, oldest first
-- Returns 1 when the entries, their mark and their count are gone, 0 when they stay (to be applied).
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local function parts(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local cursor_ms, cursor_seq = parts(redis.call('HGET', KEYS[2], 'id') or '0-0')
local first_ms, first_seq = parts(ARGV[1])
if cursor_ms > first_ms or (cursor_ms == first_ms and cursor_seq >= first_seq) then
  return 0
end
redis.call('XDEL', KEYS[3], unpack(ARGV))
redis.call('DEL', KEYS[4])
redis.call('HINCRBY', KEYS[2], 'appended', -#ARGV)
return 1
