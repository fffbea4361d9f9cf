-- Erase a recovery case (GDPR) with its index entries and what it counted, unless it changed since it was read (a
-- lead's change, beat labelling it): what it counted is read with it, so no count or listing outlives it.
-- KEYS: 1 the case's hash, 2 the bucket's case counters, 3.. its index sets
-- ARGV: 1 the rev read, 2 m, then m counter/decrement pairs, then its member in each index set (in order)
-- Returns 1 when erased, 0 when it is gone already, -1 when its rev moved (read it again).
local rev = redis.call('HGET', KEYS[1], 'rev')
if not rev then return 0 end
if rev ~= ARGV[1] then return -1 end
redis.call('DEL', KEYS[1])
local m = tonumber(ARGV[2])
for i = 3, 2 + 2 * m, 2 do
  redis.call('HINCRBY', KEYS[2], ARGV[i], -tonumber(ARGV[i + 1]))
end
for k = 3, #KEYS do
  redis.call('ZREM', KEYS[k], ARGV[2 * m + k])
end
return 1
