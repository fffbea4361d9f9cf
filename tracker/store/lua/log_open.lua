-- Open a shard for an applier in one step: take its lease and read its first entries after the cursor.
-- KEYS[1] lease, KEYS[2] progress (cursor hash), KEYS[3] stream, KEYS[4] waiting entries (zset)
-- ARGV[1] lease token, ARGV[2] lease ttl (ms), ARGV[3] entries read at most
-- Returns false when another applier holds the lease; {0, cursor} when the shard holds nothing to apply (no
-- entry after the cursor, none waiting): the lease is then not taken; else {1, cursor, entries} with the lease
-- taken, entries as XRANGE gives them (empty when only waiting entries are held).
if redis.call('EXISTS', KEYS[1]) == 1 then
  return false
end
local after = redis.call('HGET', KEYS[2], 'id') or '0-0'
local entries = redis.call('XRANGE', KEYS[3], '(' .. after, '+', 'COUNT', ARGV[3])
if #entries == 0 and redis.call('ZCARD', KEYS[4]) == 0 then
  return {0, after}
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {1, after, entries}
