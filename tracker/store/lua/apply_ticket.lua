-- Apply one ticket event so that any arrival order ends in the state an in-order run leaves.
-- KEYS: 1 ticket, 2 due zset, 3 profile, 4 customer's tickets, 5 customers set, 6 alias key,
--       7 customer's timeline, 8 ticket's status history
-- ARGV: 1 tkey, 2 at (ms), 3 event id, 4 status, 5 delay (ms), 6 email, 7 name, 8 locale,
--       9 subject, 10 channel, 11 brand, 12 team, 13 tags (JSON), 14 agent id, 15 agent name,
--       16 agent email, 17 source, 18 ticket id, 19 alias entry ('source:id' or ''),
--       20 timeline entry, 21 timeline size cap, 22 status history size cap,
--       23 customer's time zone (IANA or ''), 24 agent involved ('1', '0' or '' when the source does not say),
--       25 stale before (ms, or '' for no limit): a survey due before this would already have expired
-- Returns 2 when a new solve was too old to survey (not scheduled), else 1.
local t = KEYS[1]
local at = tonumber(ARGV[2])
local eid = ARGV[3]
local status = ARGV[4]
local result = 1

local function newer(at_field, eid_field)
  local cur = tonumber(redis.call('HGET', t, at_field) or '-1')
  local cur_eid = redis.call('HGET', t, eid_field) or ''
  return at > cur or (at == cur and eid > cur_eid)
end

redis.call('HSETNX', t, 'source', ARGV[17])
redis.call('HSETNX', t, 'ticket_id', ARGV[18])
local created = tonumber(redis.call('HGET', t, 'created_at') or '-1')
if created < 0 or at < created then
  redis.call('HSET', t, 'created_at', at)
end

-- Newer events overwrite the ticket's details, older ones only fill gaps; empty fields never
-- erase known ones (an unassign-on-solve automation must not lose the agent).
local meta = {'customer', ARGV[6], 'subject', ARGV[9], 'channel', ARGV[10], 'brand', ARGV[11],
              'team', ARGV[12], 'tags', ARGV[13], 'agent_id', ARGV[14], 'agent_name', ARGV[15],
              'agent_email', ARGV[16], 'agent_involved', ARGV[24] or ''}
local write = 'HSETNX'
if newer('meta_at', 'meta_eid') then
  write = 'HSET'
  redis.call('HSET', t, 'meta_at', at, 'meta_eid', eid)
end
for i = 1, #meta, 2 do
  if meta[i + 1] ~= '' then redis.call(write, t, meta[i], meta[i + 1]) end
end

if status ~= '' then
  -- The status history, ordered by time (ties by event id), decides status and solve time, so
  -- any arrival order gives what the in-order run gives.
  local h = KEYS[8]
  redis.call('ZADD', h, at, eid .. '|' .. status)
  redis.call('ZREMRANGEBYRANK', h, 0, -tonumber(ARGV[22]) - 1)
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
      local due = tonumber(solved_at) + tonumber(ARGV[5])
      if (ARGV[25] or '') ~= '' and due < tonumber(ARGV[25]) then
        redis.call('ZREM', KEYS[2], ARGV[1])
        result = 2
      else
        redis.call('ZADD', KEYS[2], due, ARGV[1])
      end
    end
  elseif before then
    redis.call('HDEL', t, 'solved_at')
    redis.call('ZREM', KEYS[2], ARGV[1])
  end
end

-- The customer profile: the newest event names the customer.
local p = KEYS[3]
redis.call('HSETNX', p, 'email', ARGV[6])
local first = tonumber(redis.call('HGET', p, 'first_seen') or '-1')
if first < 0 or at < first then redis.call('HSET', p, 'first_seen', at) end
local seen_at = tonumber(redis.call('HGET', p, 'seen_at') or '-1')
if at >= seen_at then
  redis.call('HSET', p, 'seen_at', at)
  if ARGV[7] ~= '' then redis.call('HSET', p, 'name', ARGV[7]) end
  if ARGV[8] ~= '' then redis.call('HSET', p, 'locale', ARGV[8]) end
  if (ARGV[23] or '') ~= '' then redis.call('HSET', p, 'timezone', ARGV[23]) end
else
  if ARGV[7] ~= '' then redis.call('HSETNX', p, 'name', ARGV[7]) end
  if ARGV[8] ~= '' then redis.call('HSETNX', p, 'locale', ARGV[8]) end
  if (ARGV[23] or '') ~= '' then redis.call('HSETNX', p, 'timezone', ARGV[23]) end
end
redis.call('SADD', KEYS[4], ARGV[1])
redis.call('ZADD', KEYS[5], 0, ARGV[6])
if ARGV[19] ~= '' then
  redis.call('SET', KEYS[6], ARGV[6])
  redis.call('HSET', p, 'alias:' .. ARGV[19], '1')
end
redis.call('ZADD', KEYS[7], at, ARGV[20])
redis.call('ZREMRANGEBYRANK', KEYS[7], 0, -tonumber(ARGV[21]) - 1)
return result
