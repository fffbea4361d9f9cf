-- Apply one ticket event to the ticket's bucket, so that any arrival order ends in the state an
-- in-order run leaves. The customer's side (profile, index, timeline) is apply_customer.lua's.
-- KEYS (one ticket bucket): 1 ticket, 2 its status history, 3 the bucket's due zset
-- ARGV: 1 tkey, 2 at (ms), 3 event id, 4 status, 5 delay (ms), 6 email, 7 subject, 8 channel, 9 brand,
--       10 team, 11 tags (JSON or ''), 12 agent id, 13 agent name, 14 agent email,
--       15 agent involved ('1', '0' or '' when the source does not say), 16 status history size cap,
--       17 stale before (ms, or '' for no limit): a survey due before this would already have expired,
--       18 now (wall clock, ms), 19 how long an idle ticket is kept (ms), 20 resolved by ('human', 'bot' or '')
-- Returns {result, first}: result 2 when a new solve was too old to survey (not scheduled), else 1; first 1 when
-- this is the earliest event known of the ticket (it created the ticket, also when applied again), else 0.
--
-- Lifetime: while a survey is due the ticket has no expiry; once its survey was sent it goes when
-- that survey can no longer be answered ('keep', set by release_due.lua); otherwise (open, or
-- resolved without a survey) it goes after the idle time with no event.
local t, h, due = KEYS[1], KEYS[2], KEYS[3]
local tkey = ARGV[1]
local at = tonumber(ARGV[2])
local eid = ARGV[3]
local status = ARGV[4]
local result = 1

local function newer(at_field, eid_field)
  local cur = tonumber(redis.call('HGET', t, at_field) or '-1')
  local cur_eid = redis.call('HGET', t, eid_field) or ''
  return at > cur or (at == cur and eid > cur_eid)
end

local created = tonumber(redis.call('HGET', t, 'created_at') or '-1')
if created < 0 or at < created then
  redis.call('HSET', t, 'created_at', ARGV[2])
end
local first = (created < 0 or at <= created) and 1 or 0

-- Newer events overwrite the ticket's details, older ones only fill gaps; empty fields never
-- erase known ones (an unassign-on-solve automation must not lose the agent).
local meta = {'customer', ARGV[6], 'subject', ARGV[7], 'channel', ARGV[8], 'brand', ARGV[9],
              'team', ARGV[10], 'tags', ARGV[11], 'agent_id', ARGV[12], 'agent_name', ARGV[13],
              'agent_email', ARGV[14], 'agent_involved', ARGV[15], 'resolved_by', ARGV[20] or ''}
local write = 'HSETNX'
if newer('meta_at', 'meta_eid') then
  write = 'HSET'
  redis.call('HSET', t, 'meta_at', ARGV[2], 'meta_eid', eid)
end
for i = 1, #meta, 2 do
  if meta[i + 1] ~= '' then redis.call(write, t, meta[i], meta[i + 1]) end
end

local new_solve = false
if status ~= '' then
  -- The status history, ordered by time (ties by event id), decides status and solve time, so
  -- any arrival order gives what the in-order run gives.
  redis.call('ZADD', h, at, eid .. '|' .. status)
  redis.call('ZREMRANGEBYRANK', h, 0, -tonumber(ARGV[16]) - 1)
  local entries = redis.call('ZRANGE', h, 0, -1, 'WITHSCORES')
  local current, current_at, solved_at = '', '', false
  for i = 1, #entries, 2 do
    local st = string.match(entries[i], '|([^|]*)$')
    local resolved = st == 'solved' or st == 'closed'
    local was_resolved = current == 'solved' or current == 'closed'
    if st == 'solved' or (resolved and not was_resolved) then
      solved_at = entries[i + 1]
    elseif not resolved then
      solved_at = false
    end
    current, current_at = st, entries[i + 1]
  end
  redis.call('HSET', t, 'status', current, 'status_at', current_at)
  local before = redis.call('HGET', t, 'solved_at')
  if solved_at then
    if before ~= solved_at then
      redis.call('HSET', t, 'solved_at', solved_at)
      redis.call('HDEL', t, 'keep')  -- a new solve: what an earlier survey kept no longer applies
      local at_due = tonumber(solved_at) + tonumber(ARGV[5])
      if ARGV[17] ~= '' and at_due < tonumber(ARGV[17]) then
        redis.call('ZREM', due, tkey)
        result = 2
      else
        redis.call('ZADD', due, at_due, tkey)
        new_solve = true
      end
    end
  elseif before then
    redis.call('HDEL', t, 'solved_at')
    redis.call('ZREM', due, tkey)
  end
end

local now_status = redis.call('HGET', t, 'status')
if new_solve or redis.call('ZSCORE', due, tkey) then
  redis.call('PERSIST', t)
  redis.call('PERSIST', h)
else
  if now_status ~= 'solved' and now_status ~= 'closed' then redis.call('HDEL', t, 'keep') end
  local keep = redis.call('HGET', t, 'keep')
  local until_ms = keep or string.format('%d', tonumber(ARGV[18]) + tonumber(ARGV[19]))
  redis.call('PEXPIREAT', t, until_ms)
  redis.call('PEXPIREAT', h, until_ms)
end
return {result, first}
