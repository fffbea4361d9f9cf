-- Let go of a claimed ticket (or order) due entry: drop it unless a newer solve (or another claim)
-- rescored it, note the survey sent for it, and set how long the ticket (order) is kept now that
-- no survey of it is due: until its survey can no longer be answered ('keep'), else the idle time.
-- A survey event (survey.sent, survey.answered) holds no claim: it names the solve its survey is about, and
-- when that is the ticket's current solve the due entry goes too (the sweep would only find that survey done),
-- so the ticket gets its lifetime now instead of living on while the entry waits.
-- KEYS (one ticket bucket): 1 the bucket's due zset, 2 the ticket (or order) hash,
--       3 the ticket's status history (tickets only)
-- ARGV: 1 due member, 2 claimed due score, 3 now (wall clock, ms), 4 how long an idle ticket is kept (ms),
--       5 the sid of the survey sent ('' when none was), 6 when that survey can no longer be answered (ms, or ''),
--       7 the solve (ms) that survey is about, when no claim is held ('' otherwise)
-- Returns 1 when this claim dropped the entry, else 0.
local due, h, member = KEYS[1], KEYS[2], ARGV[1]
local dropped = 0
if tonumber(redis.call('ZSCORE', due, member) or '-1') == tonumber(ARGV[2]) then
  dropped = redis.call('ZREM', due, member)
end
if redis.call('EXISTS', h) == 1 then  -- never bring back a ticket erased or expired meanwhile
  if ARGV[5] ~= '' then redis.call('HSET', h, 'survey_sid', ARGV[5]) end
  if (ARGV[7] or '') ~= '' and redis.call('HGET', h, 'solved_at') == ARGV[7] then
    redis.call('ZREM', due, member)
  end
  if ARGV[6] ~= '' and tonumber(ARGV[6]) > tonumber(redis.call('HGET', h, 'keep') or '0') then
    redis.call('HSET', h, 'keep', ARGV[6])
  end
  if not redis.call('ZSCORE', due, member) then
    local until_ms = redis.call('HGET', h, 'keep') or string.format('%d', tonumber(ARGV[3]) + tonumber(ARGV[4]))
    for i = 2, #KEYS do redis.call('PEXPIREAT', KEYS[i], until_ms) end
  end
end
return dropped
