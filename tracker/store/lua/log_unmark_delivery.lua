-- A retry found its delivery marked but a portion of it missing (the attempt that marked it failed half-way):
-- undo the retry's duplicate count and, once, the mark and its accepted count, so the retry appends and counts it.
-- KEYS[1] delivery mark, KEYS[2] received counters of the same shard
-- ARGV[1] the mark the retry found, ARGV[2] source
-- Returns 1 when this call removed the mark, 0 when it was gone or changed already.
redis.call('HINCRBY', KEYS[2], ARGV[2] .. '|duplicate', -1)
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('HINCRBY', KEYS[2], ARGV[2] .. '|accepted', -1)
  return 1
end
return 0
