-- Delete entries of one shard (an erasure): from the stream, from the waiting entries, and from the backlog count.
-- KEYS[1] stream, KEYS[2] progress (cursor hash), KEYS[3] waiting entries (zset), KEYS[4] what they wait for (hash)
-- ARGV entry ids
-- Returns how many entries were deleted.
local cursor = redis.call('HGET', KEYS[2], 'id') or '0-0'
local cms, cseq = string.match(cursor, '^(%d+)-(%d+)$')
cms, cseq = tonumber(cms), tonumber(cseq)
local deleted = 0
for _, id in ipairs(ARGV) do
  if redis.call('XDEL', KEYS[1], id) == 1 then
    deleted = deleted + 1
    local ms, seq = string.match(id, '^(%d+)-(%d+)$')
    ms, seq = tonumber(ms), tonumber(seq)
    if ms > cms or (ms == cms and seq > cseq) then
      redis.call('HINCRBY', KEYS[2], 'appended', -1)  -- never to be passed by an applier
    end
  end
  redis.call('ZREM', KEYS[3], id)
  redis.call('HDEL', KEYS[4], id)
end
return deleted
