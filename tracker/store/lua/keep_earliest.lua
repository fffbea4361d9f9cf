-- Keep the earlier of two times in one key: the one it holds and ARGV 1 (ms). Safe to repeat, in any order.
-- KEYS: 1 the time's key
-- Returns 1 when the key changed, 0 when it held that time or an earlier one.
local held = tonumber(redis.call('GET', KEYS[1]) or '')
if held and held <= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1
