-- Remove a claimed due entry unless a newer solve rescheduled it.
-- KEYS: 1 the due zset of the member; ARGV: 1 member, 2 claimed score
if tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]) or '-1') == tonumber(ARGV[2]) then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
