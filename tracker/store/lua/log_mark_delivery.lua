-- Mark a delivery seen once every portion of it is in the log, and count it: accepted once, duplicate after.
-- KEYS[1] delivery mark (in the shard the delivery id falls in), KEYS[2] that shard's received counters
-- ARGV[1] dedupe ttl (s), ARGV[2] source
-- Returns 1 for a new delivery, 0 for a duplicate.
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  redis.call('HINCRBY', KEYS[2], ARGV[2] .. '|accepted', 1)
  return 1
end
redis.call('HINCRBY', KEYS[2], ARGV[2] .. '|duplicate', 1)
return 0
