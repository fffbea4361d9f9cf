-- Write one entity's rebuilt sums, daily buckets and rollup (and a customer's unhappy answers), unless the
-- entity already took an outbox entry newer than the snapshot the rebuild was computed at.
-- KEYS: 1 marks, 2 aggregate, 3 daily, 4 rollup, (a customer's) 5 unhappy answers
-- The marks are fields of the aggregate's hash, and a customer's aggregate is their profile (tracker.store.sums):
-- its sums are replaced, the rest of the hash is kept.
-- ARGV: 1 number of buckets, 2.. each bucket's snapshot sequence number, then four lists, each a count and
--       that many field/value pairs: the aggregate, the daily buckets, the rollup, the unhappy answers (sid, at);
--       then when a customer's day buckets expire (ms, '' none: tracker.store.customer_days)
-- Returns 1 when written, 0 when the entity moved past the snapshot (compute again).
--#sums
local buckets = tonumber(ARGV[1])
for b = 0, buckets - 1 do
  if tonumber(redis.call('HGET', KEYS[1], tostring(b)) or '0') > tonumber(ARGV[2 + b]) then return 0 end
end
local pos = 2 + buckets
local function pairs_list()
  local flat = {}
  local count = tonumber(ARGV[pos])
  for i = 1, 2 * count do flat[i] = ARGV[pos + i] end
  pos = pos + 1 + 2 * count
  return flat
end
local sums, daily, rollup, unhappy = pairs_list(), pairs_list(), pairs_list(), pairs_list()
-- HSET in slices: unpack has a limit (a rollup of years holds thousands of fields).
local function hset_all(key, flat)
  for i = 1, #flat, 1000 do redis.call('HSET', key, unpack(flat, i, math.min(i + 999, #flat))) end
end
drop_sums(KEYS[2])
redis.call('DEL', KEYS[3], KEYS[4])
hset_all(KEYS[2], sums)
hset_all(KEYS[3], daily)
if #daily > 0 and (ARGV[pos] or '') ~= '' then redis.call('PEXPIREAT', KEYS[3], ARGV[pos]) end
hset_all(KEYS[4], rollup)
if KEYS[5] then
  redis.call('DEL', KEYS[5])
  for i = 1, #unhappy, 2 do redis.call('ZADD', KEYS[5], unhappy[i + 1], unhappy[i]) end
end
return 1
