-- An applier's last look at a shard that seemed empty, in one step: release the shard's kick (an append after
-- this kicks a new drain), read what came after the cursor, and when nothing did and nothing waits, release the
-- lease too. Atomic: an append before it is read here, one after it finds kick and lease free.
-- KEYS[1] kick, KEYS[2] lease, KEYS[3] stream, KEYS[4] waiting entries (zset)
-- ARGV[1] lease token, ARGV[2] newest entry id passed (the cursor), ARGV[3] entries read at most
-- Returns {1, entries} when entries came (the lease kept), {2} when entries wait (the lease kept, for the
-- caller's pass over them), {0} when the shard is done and its lease released, {3} when the lease is another
-- applier's now (nothing done: that applier makes this look itself).
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return {3}
end
redis.call('DEL', KEYS[1])
local entries = redis.call('XRANGE', KEYS[3], '(' .. ARGV[2], '+', 'COUNT', ARGV[3])
if #entries > 0 then
  return {1, entries}
end
if redis.call('ZCARD', KEYS[4]) > 0 then
  return {2}
end
redis.call('DEL', KEYS[2])
return {0}
