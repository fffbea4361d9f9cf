-- Keep one customer's entry in the name index: "<name lowercased>|<email>", scored 0, listed by ZRANGEBYLEX.
-- KEYS: 1 the name index (zset), 2 email -> the lowercased name indexed (hash); one slot ({names})
-- ARGV: 1 email, 2 the name lowercased ('' takes the customer off the index: erasure, a profile without a name)
local old = redis.call('HGET', KEYS[2], ARGV[1])
if old == ARGV[2] or (old == false and ARGV[2] == '') then return 0 end
if old then redis.call('ZREM', KEYS[1], old .. '|' .. ARGV[1]) end
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[2], ARGV[1])
else
  redis.call('ZADD', KEYS[1], 0, ARGV[2] .. '|' .. ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
end
return 1
