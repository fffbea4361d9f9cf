-- Mark a survey sent, append "count it once as sent for every entity" to the bucket's outbox, and schedule
-- its reminder. The ticket's side (its survey_sid, the due entry) is settled after, in the ticket's slot.
-- KEYS: 1 survey, 2 the bucket's outbox, 3 its sequence, 4 the bucket's reminder due set, 5 the survey's filing hash
--       (all in the survey's slot)
-- ARGV: 1 sent at (ms), 2 expires at (ms), 3 the outbox entry (JSON; '' for a test survey, which counts nowhere), 4 the reminder's due member,
--       5 when it is due (0: no reminder)
-- Returns {1, seq} when marked now (seq 0: no entry), {0, 0} when it was recorded sent already or there is no survey.
-- status, sent_at and expires_at by their codes (tracker.store.survey_codes): st, sn, ex; z the packed fields
-- A survey answered already was recorded sent already (it has its sent time, packed or not), unless its customer was
-- quicker than its sender: answered between the mail server taking the mail and this record (which waits through a
-- Redis outage). That one is recorded sent and counted now, its status kept, and it gets no reminder.
--#thaw
-- A filed survey (no hash) was sent or answered: only those are settled (and filed), so it stays filed.
local status = redis.call('HGET', KEYS[1], 'st')
if not status or status == 'sent' then return {0, 0} end
local answered = status == 'answered'
if answered and (redis.call('HEXISTS', KEYS[1], 'sn') == 1 or redis.call('HEXISTS', KEYS[1], 'z') == 1) then
  return {0, 0}
end
thaw(KEYS[1], KEYS[5])  -- only a sent or answered survey is settled: never here, but nothing writes beside a packed field
if answered then
  redis.call('HSET', KEYS[1], 'sn', ARGV[1], 'ex', ARGV[2])
else
  redis.call('HSET', KEYS[1], 'st', 'sent', 'sn', ARGV[1], 'ex', ARGV[2])
end
redis.call('HDEL', KEYS[1], 'next_attempt_at', 'error', 'handoff_at')
local seq = 0
if ARGV[3] ~= '' then
  seq = redis.call('INCR', KEYS[3])
  redis.call('ZADD', KEYS[2], seq, seq .. '|' .. ARGV[3])
else
  -- A test survey is in no index (erasure and retention never find it): it leaves a week after it expires.
  redis.call('PEXPIREAT', KEYS[1], tonumber(ARGV[2]) + 7 * 86400000)
end
if not answered and tonumber(ARGV[5]) > 0 then redis.call('ZADD', KEYS[4], 'NX', ARGV[5], ARGV[4]) end
return {1, seq}
