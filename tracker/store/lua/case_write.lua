-- Write a recovery case whole, unless another writer changed it since it was read: its fields, its bucket's
-- counters and its index entries, in one step (all in the case bucket's slot).
-- KEYS: 1 the case's hash, 2 the bucket's case counters, 3.. index sets (score 0, ordered by member)
-- ARGV: 1 the rev read ("new": the case must not exist yet), 2 n, then n field/value pairs,
--       then m, then m counter/increment pairs, then for each index key an op ("+" add, "-" remove) and a member
-- Returns the case's new rev; 0 when a "new" case exists already, -1 when its rev moved (read it again).
local rev = redis.call('HGET', KEYS[1], 'rev')
if ARGV[1] == 'new' then
  if rev then return 0 end
elseif rev ~= ARGV[1] then
  return -1
end
local i = 2
local n = tonumber(ARGV[i])
i = i + 1
local pairs_ = {}
for _ = 1, n do
  pairs_[#pairs_ + 1] = ARGV[i]
  pairs_[#pairs_ + 1] = ARGV[i + 1]
  i = i + 2
end
local new_rev = redis.call('HINCRBY', KEYS[1], 'rev', 1)
if #pairs_ > 0 then redis.call('HSET', KEYS[1], unpack(pairs_)) end
local m = tonumber(ARGV[i])
i = i + 1
for _ = 1, m do
  redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i + 1])
  i = i + 2
end
for k = 3, #KEYS do
  if ARGV[i] == '+' then
    redis.call('ZADD', KEYS[k], 0, ARGV[i + 1])
  else
    redis.call('ZREM', KEYS[k], ARGV[i + 1])
  end
  i = i + 2
end
return new_rev
