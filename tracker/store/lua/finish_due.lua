-- Close a survey with an outcome (skipped or failed) unless it was sent, answered or so closed already.
-- KEYS (one survey bucket): 1 survey, 2 its filing hash (tracker.store.filed)
-- ARGV: 1 status, 2 reason, 3 at (ms), 4.. field/value pairs of the survey as it stands (as its hash names them)
-- Returns 1 when the survey was closed now (the caller counts it, once), else 0.
--#thaw
local status = redis.call('HGET', KEYS[1], 'st')  -- status (tracker.store.survey_codes)
if status == 'sent' or status == 'answered' or status == ARGV[1] then return 0 end
-- Filed: sent or answered (only those are settled and filed), so it stays as it is.
if not status and redis.call('HEXISTS', KEYS[2], filed_sid(KEYS[1]) or '') == 1 then return 0 end
thaw(KEYS[1], KEYS[2])  -- only a sent or answered survey is settled: never here, but nothing writes beside a packed field
for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('HSET', KEYS[1], 'st', ARGV[1], 'reason', ARGV[2], 'closed_at', ARGV[3])
return 1
