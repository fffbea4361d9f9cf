-- Claim the one reminder of a survey: only while it is sent, unanswered, unexpired and not reminded.
-- KEYS: 1 survey; ARGV: 1 now (ms). Returns the attempt number, or 0 when no reminder may go.
-- The survey's status is 'st' and its expiry 'ex' (their codes: tracker.store.survey_codes).
--#thaw
if redis.call('HGET', KEYS[1], 'st') ~= 'sent' then return 0 end
if settled(KEYS[1]) then return 0 end  -- settled: it expired
if redis.call('HEXISTS', KEYS[1], 'reminded_at') == 1 then return 0 end
if tonumber(redis.call('HGET', KEYS[1], 'ex') or '0') <= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'reminded_at', ARGV[1])
return redis.call('HINCRBY', KEYS[1], 'reminder_attempts', 1)
