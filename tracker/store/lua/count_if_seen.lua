-- Say whether a delivery was already appended and, when it was, count the retry as a duplicate.
-- KEYS[1] delivery mark (set by log_mark_delivery), KEYS[2] received counters of the same shard
-- ARGV[1] source
-- Returns 1 for a known delivery (counted), 0 otherwise (nothing written).
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HINCRBY', KEYS[2], ARGV[1] .. '|duplicate', 1)
  return 1
end
return 0
