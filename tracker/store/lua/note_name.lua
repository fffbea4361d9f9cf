-- Note a display name as the newest event naming it gives it, whatever order events arrive in.
-- KEYS: 1 the names hash (a single key: nothing else in this script)
-- ARGV: 1 field ('agent|<source>:<agent id>'), 2 name, 3 the event's time (ms), 4 the event's id
-- The time and id of the event that named it live beside it, in field 'at|<field>' = '<ms>|<event id>'.
local mark = redis.call('HGET', KEYS[1], 'at|' .. ARGV[1])
local at, eid = -1, ''
if mark then
  at = tonumber(string.match(mark, '^(%-?%d+)')) or -1
  eid = string.match(mark, '^%-?%d+|(.*)$') or ''
end
local t = tonumber(ARGV[3])
if t > at or (t == at and ARGV[4] > eid) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2], 'at|' .. ARGV[1], ARGV[3] .. '|' .. ARGV[4])
  return 1
end
return 0
