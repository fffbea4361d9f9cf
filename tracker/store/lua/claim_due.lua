-- Lease the entries of one due set that are due: each stays in the set, rescored to when its lease
-- runs out, so a worker that dies mid-send leaves it to be claimed again.
-- KEYS: 1 due zset; ARGV: 1 now (ms), 2 lease until (ms), 3 limit
-- Returns the members leased and the score each was due at: {member, score, member, score, ...}.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
for i = 1, #due, 2 do
  redis.call('ZADD', KEYS[1], ARGV[2], due[i])
end
return due
