-- Mark a delivery seen, in the same pipeline as its portions, and count it: accepted once, duplicate after.
-- KEYS[1] delivery mark (in the shard the delivery id falls in), KEYS[2] that shard's received counters
-- ARGV[1] dedupe ttl (s), ARGV[2] source, ARGV[3] the mark: "@" and the shards of its portions ("@3,7")
-- Returns 1 for a new delivery, else {0, the mark found} (a duplicate).
-- The mark names the shards so that a retry finding it can tell its own portions from the first attempt's
-- (a portion appended now on a shard the mark does not name came from another body under the same id), and
-- so that count_if_seen checks every portion is in: queued after them, it may be written when one failed.
if redis.call('SET', KEYS[1], ARGV[3], 'NX', 'EX', ARGV[1]) then
  redis.call('HINCRBY', KEYS[2], ARGV[2] .. '|accepted', 1)
  return 1
end
redis.call('HINCRBY', KEYS[2], ARGV[2] .. '|duplicate', 1)
return {0, redis.call('GET', KEYS[1])}
