-- Hold the customer's one-survey-per-window slot for this survey, or say who holds it.
-- KEYS: 1 throttle key; ARGV: 1 sid, 2 window (ms)
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return holder end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return ARGV[1]
