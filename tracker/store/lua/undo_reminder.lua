-- Give the reminder claim back after a mail server said "try later", unless another claim replaced it.
-- KEYS: 1 survey; ARGV: 1 the claim's time (ms)
if redis.call('HGET', KEYS[1], 'reminded_at') == ARGV[1] then
  return redis.call('HDEL', KEYS[1], 'reminded_at')
end
return 0
