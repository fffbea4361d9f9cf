-- Record an applier's progress in one shard, only while it still holds the shard's lease (renewing it).
-- KEYS[1] lease, KEYS[2] progress (cursor hash), KEYS[3] waiting entries (zset), KEYS[4] what they wait for (hash)
-- ARGV[1] lease token, ARGV[2] lease ttl (ms), ARGV[3] newest entry id passed ('' keeps the cursor),
-- ARGV[4] entries passed, ARGV[5] n, ARGV[6 .. 5+n] entry ids no longer waiting,
-- then triples: entry id, when it is tried next (ms), what it waits for ("<tries>|<reason>|<source>|<id>")
-- Returns 1 when recorded, 0 when the lease is another applier's now (nothing written).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[2], 'id', ARGV[3])
  redis.call('HINCRBY', KEYS[2], 'passed', ARGV[4])
end
local n = tonumber(ARGV[5])
for i = 6, 5 + n do
  redis.call('ZREM', KEYS[3], ARGV[i])
  redis.call('HDEL', KEYS[4], ARGV[i])
end
for i = 6 + n, #ARGV, 3 do
  redis.call('ZADD', KEYS[3], ARGV[i + 1], ARGV[i])
  redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 2])
end
return 1
