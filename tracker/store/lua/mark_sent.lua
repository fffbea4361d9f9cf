-- Mark a survey sent, count it once for every entity it is attributed to, and schedule its reminder.
-- KEYS: 1 survey, 2 ticket, 3 due zset, 4 all sent, 5 customer's surveys, 6.. aggregate hashes
-- ARGV: 1 sid, 2 sent at (ms), 3 expires at (ms), 4 tkey, 5 claimed due score,
--       6 count of field/increment pairs, then the pairs: what one sent survey adds (Python's Aggregate),
--       then the reminder's due member and when it is due (0: no reminder)
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'sent' or status == 'answered' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'sent', 'sent_at', ARGV[2], 'expires_at', ARGV[3])
redis.call('HDEL', KEYS[1], 'next_attempt_at', 'error', 'handoff_at')
redis.call('HSET', KEYS[2], 'survey_sid', ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[5], ARGV[2], ARGV[1])
for i = 6, #KEYS do
  for j = 1, tonumber(ARGV[6]) do redis.call('HINCRBY', KEYS[i], ARGV[5 + 2 * j], ARGV[6 + 2 * j]) end
end
if tonumber(redis.call('ZSCORE', KEYS[3], ARGV[4]) or '-1') == tonumber(ARGV[5]) then redis.call('ZREM', KEYS[3], ARGV[4]) end
local reminder = 7 + 2 * tonumber(ARGV[6])
if ARGV[reminder] and tonumber(ARGV[reminder + 1]) > 0 then
  redis.call('ZADD', KEYS[3], 'NX', ARGV[reminder + 1], ARGV[reminder])
end
return 1
