-- Extend a lease only while it is still held by the given token.
-- KEYS: 1 the lease; ARGV: 1 token, 2 new lifetime (ms). Returns 1 when extended, 0 when lost.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
