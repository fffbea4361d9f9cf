-- Note on a case a replay carried from another install when the new survey its closing scheduled was due there
-- (a case.resurvey line), once: the due entry is added from this note once the case's survey is recorded here too.
-- KEYS: 1 the case's hash; ARGV: 1 its due member ("c|<case id>", the mark its closing left), 2 when it is due (ms)
-- Returns 1 when noted now, 0 when noted before, -1 when there is no such case, -2 when its closing scheduled none.
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('HGET', KEYS[1], 'resurvey') ~= ARGV[1] then return -2 end
return redis.call('HSETNX', KEYS[1], 'resurvey_due', ARGV[2])
