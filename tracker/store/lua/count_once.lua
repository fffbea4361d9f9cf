-- Add counts to a hash once per outbox entry: only when the entry is newer than the hash's mark for its bucket.
-- KEYS: 1 the counts hash; ARGV: 1 the mark's field ("outbox:<bucket>"), 2 the entry's sequence number,
--       3.. field/increment pairs. Returns 1 when counted, 0 when it was counted before.
if tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0') >= tonumber(ARGV[2]) then return 0 end
for i = 3, #ARGV, 2 do redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
