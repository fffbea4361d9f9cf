-- Move a claimed due entry to a later time (a retry), unless a newer solve rescheduled it.
-- KEYS: 1 the due zset of the member ("<tkey>", "o|<okey>" or "r|<sid>"); ARGV: 1 member, 2 claimed score, 3 new score
if tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]) or '-1') == tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  return 1
end
return 0
