-- Close a due entry with an outcome unless it was rescheduled meanwhile (a newer solve).
-- KEYS: 1 survey, 2 due zset, 3 stats hash, 4 customer's surveys
-- ARGV: 1 tkey, 2 claimed due score, 3 status, 4 reason, 5 at (ms), 6 sid, 7.. field/value pairs
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'sent' and status ~= 'answered' and status ~= ARGV[3] then
  for i = 7, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
  redis.call('HSET', KEYS[1], 'status', ARGV[3], 'reason', ARGV[4], 'closed_at', ARGV[5])
  redis.call('HINCRBY', KEYS[3], ARGV[3] .. ':' .. ARGV[4], 1)
  redis.call('ZADD', KEYS[4], ARGV[5], ARGV[6])
end
if tonumber(redis.call('ZSCORE', KEYS[2], ARGV[1]) or '-1') == tonumber(ARGV[2]) then redis.call('ZREM', KEYS[2], ARGV[1]) end
return 1
