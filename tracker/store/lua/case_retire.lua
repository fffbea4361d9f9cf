-- Delete a closed recovery case past retention with its index entries, unless it changed since it was read
-- (reopened, say); its bucket's counters keep what it counted.
-- KEYS: 1 the case's hash, 2.. its index sets; ARGV: 1 the rev read, 2.. its member in each index set (in order)
if redis.call('HGET', KEYS[1], 'rev') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
for k = 2, #KEYS do
  redis.call('ZREM', KEYS[k], ARGV[k])
end
return 1
