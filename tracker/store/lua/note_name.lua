-- Note a display name as the newest event naming it gives it, whatever order events arrive in.
-- KEYS: 1 the names hash (a single key: nothing else in this script)
-- ARGV: 1 field ('agent|<source>:<agent id>'), 2 name, 3 the event's time (ms)
-- The time of the event that named it lives beside it, in field 'at|<field>'; of two names given at the
-- same time the greater wins, so any arrival order leaves the same name.
local at = tonumber(redis.call('HGET', KEYS[1], 'at|' .. ARGV[1]) or '-1')
local t = tonumber(ARGV[3])
if t > at or (t == at and ARGV[2] > (redis.call('HGET', KEYS[1], ARGV[1]) or '')) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2], 'at|' .. ARGV[1], ARGV[3])
  return 1
end
return 0
