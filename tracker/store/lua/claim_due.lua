-- Lease the surveys that are due: each stays in the set, rescored to when its lease runs out,
-- so a worker that dies mid-send leaves it to be claimed again.
-- KEYS: 1 due zset; ARGV: 1 now (ms), 2 lease until (ms), 3 limit
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, member in ipairs(due) do
  redis.call('ZADD', KEYS[1], ARGV[2], member)
end
return due
