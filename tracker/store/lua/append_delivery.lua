-- Dedupe a delivery and append its events to the log in one step.
-- KEYS[1] seen key, KEYS[2] stream, KEYS[3] kick key, KEYS[4] received counters
-- ARGV[1] dedupe ttl (s), ARGV[2] kick ttl (ms), ARGV[3] source, ARGV[4..] event records (JSON)
-- Returns -1 for a duplicate, else 1 when a drain should be kicked, 0 when one is already due.
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  redis.call('HINCRBY', KEYS[4], ARGV[3] .. '|duplicate', 1)
  return -1
end
redis.call('HINCRBY', KEYS[4], ARGV[3] .. '|accepted', 1)
for i = 4, #ARGV do
  redis.call('XADD', KEYS[2], '*', 'e', ARGV[i])
end
if redis.call('SET', KEYS[3], '1', 'NX', 'PX', ARGV[2]) then
  return 1
end
return 0
