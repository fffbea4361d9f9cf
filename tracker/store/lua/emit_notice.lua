-- Append one notice to its bucket's stream, once per notice id: an emit repeated (an outbox entry forwarded
-- again, a log entry applied again after a crash) finds the mark and appends nothing.
-- KEYS: 1 the bucket's notice stream, 2 the notice's mark (one notice bucket)
-- ARGV: 1 notice id, 2 type, 3 customer, 4 time (ms), 5 data (JSON), 6 the mark's lifetime (seconds)
-- Returns the stream entry id when appended now, false when appended before.
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[6]) == false then return false end
return redis.call('XADD', KEYS[1], '*', 'id', ARGV[1], 'type', ARGV[2], 'customer', ARGV[3], 'at', ARGV[4],
                  'data', ARGV[5])
