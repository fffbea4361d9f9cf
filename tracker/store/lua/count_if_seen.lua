-- Say whether a delivery was already marked and, when it was, count the retry as a duplicate.
-- KEYS[1] delivery mark (set by log_mark_delivery), KEYS[2] received counters of the same shard
-- ARGV[1] source
-- Returns 0 for an unknown delivery (nothing written), else the mark: "1" (written once every portion was in)
-- or "@<shards>", whose portions the caller checks; when one is missing, log_unmark_delivery undoes the count.
local mark = redis.call('GET', KEYS[1])
if not mark then
  return 0
end
redis.call('HINCRBY', KEYS[2], ARGV[1] .. '|duplicate', 1)
return mark
