-- Move a hash layout 9 kept apart (an entity's high-water marks, a customer's sums) into the hash that keeps its
-- fields now (tracker.store.sums: the entity's sums hash, the customer's profile), in one step: every field
-- copied, then the old hash deleted. Safe to run again: a hash already moved is not there.
-- KEYS: 1 the layout-9 hash, 2 its home (one hash tag: one slot)
-- Returns how many fields were moved.
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 1000 do redis.call('HSET', KEYS[2], unpack(fields, i, math.min(i + 999, #fields))) end
redis.call('DEL', KEYS[1])
return #fields / 2
