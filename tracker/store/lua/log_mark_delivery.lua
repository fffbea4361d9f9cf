-- Mark a delivery seen, in the same pipeline as its portions, and count it: accepted once, duplicate after.
-- KEYS[1] delivery mark (in the shard the delivery id falls in), KEYS[2] that shard's received counters
-- ARGV[1] dedupe ttl (s), ARGV[2] source, ARGV[3] the mark: "@" and the shards of its portions ("@3,7")
-- Returns 1 for a new delivery, 0 for a duplicate.
-- The mark names the shards so that a retry finding it checks that every portion is in (count_if_seen):
-- queued after the portions, it may still be written when one of them failed.
if redis.call('SET', KEYS[1], ARGV[3], 'NX', 'EX', ARGV[1]) then
  redis.call('HINCRBY', KEYS[2], ARGV[2] .. '|accepted', 1)
  return 1
end
redis.call('HINCRBY', KEYS[2], ARGV[2] .. '|duplicate', 1)
return 0
