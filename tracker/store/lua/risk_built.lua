-- Mark the at-risk ranking filled for a threshold, unless a filling for another one began meanwhile.
-- KEYS: 1 its state
-- ARGV: 1 the threshold it was filled for, 2 the sets the filling filled
-- Returns 1 when marked.
if redis.call('HGET', KEYS[1], 'threshold') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'built', ARGV[1], 'sets', ARGV[2])
return 1
