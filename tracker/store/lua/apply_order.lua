-- Apply one order event; refunds add up once per event, the newest status wins.
-- KEYS: 1 order, 2 profile, 3 customer's orders, 4 customers set, 5 alias key, 6 customer's timeline,
--       7 the order's own alias (refund events of some shops name only the order), 8 due zset
-- ARGV: 1 okey, 2 at (ms), 3 event id, 4 status, 5 amount (minor units), 6 currency,
--       7 email, 8 name, 9 locale, 10 source, 11 order id, 12 alias entry ('source:id' or ''),
--       13 timeline entry, 14 timeline size cap, 15 post-purchase survey delay (ms, -1 off),
--       16 customer's time zone (IANA or ''), 17 stale before (ms, or '' for no limit): a survey due before
--       this would already have expired
-- Returns 2 when a new fulfilment was too old to survey (not scheduled), else 1.
local o = KEYS[1]
local at = tonumber(ARGV[2])
local eid = ARGV[3]
local result = 1
redis.call('HSETNX', o, 'source', ARGV[10])
redis.call('HSETNX', o, 'order_id', ARGV[11])
redis.call('HSETNX', o, 'customer', ARGV[7])
redis.call('HSETNX', o, 'currency', ARGV[6])
local created = tonumber(redis.call('HGET', o, 'created_at') or '-1')
if created < 0 or at < created then redis.call('HSET', o, 'created_at', at) end
if ARGV[4] == 'refunded' then
  -- A refund event carries the refunded amount; several partial refunds add up.
  if redis.call('HSETNX', o, 'refund:' .. eid, ARGV[5]) == 1 then
    redis.call('HINCRBY', o, 'refunded', ARGV[5])
  end
elseif ARGV[4] == 'created' or redis.call('HEXISTS', o, 'total') == 0 then
  redis.call('HSET', o, 'total', ARGV[5])
end
local cur = tonumber(redis.call('HGET', o, 'status_at') or '-1')
local cur_eid = redis.call('HGET', o, 'status_eid') or ''
local prev = redis.call('HGET', o, 'status') or ''
-- Events of one instant are ordered by what they mean (an order placed and cancelled in the same
-- second ends cancelled, whichever arrives first); the event id only breaks ties within one step.
local STEP = {created = 0, fulfilled = 1, refunded = 2, cancelled = 3}
local step, cur_step = STEP[ARGV[4]] or 0, STEP[prev] or 0
if at > cur or (at == cur and (step > cur_step or (step == cur_step and eid > cur_eid))) then
  -- A refund does not undo a cancellation, and a late 'created' does not undo anything.
  if not (ARGV[4] == 'refunded' and prev == 'cancelled') then
    redis.call('HSET', o, 'status', ARGV[4], 'status_at', at, 'status_eid', eid)
  end
end
-- A post-purchase survey is due while the order's newest status is fulfilled.
if tonumber(ARGV[15]) >= 0 then
  local member = 'o|' .. ARGV[1]
  local now_status = redis.call('HGET', o, 'status')
  local status_at = redis.call('HGET', o, 'status_at')
  if now_status == 'fulfilled' then
    if redis.call('HGET', o, 'solved_at') ~= status_at then
      redis.call('HSET', o, 'solved_at', status_at)
      local due = tonumber(status_at) + tonumber(ARGV[15])
      if (ARGV[17] or '') ~= '' and due < tonumber(ARGV[17]) then
        redis.call('ZREM', KEYS[8], member)
        result = 2
      else
        redis.call('ZADD', KEYS[8], due, member)
      end
    end
  elseif redis.call('HEXISTS', o, 'solved_at') == 1 then
    redis.call('HDEL', o, 'solved_at')
    redis.call('ZREM', KEYS[8], member)
  end
end
local p = KEYS[2]
redis.call('HSETNX', p, 'email', ARGV[7])
local seen_at = tonumber(redis.call('HGET', p, 'seen_at') or '-1')
local write = 'HSETNX'
if at >= seen_at then
  write = 'HSET'
  redis.call('HSET', p, 'seen_at', at)
end
if ARGV[8] ~= '' then redis.call(write, p, 'name', ARGV[8]) end
if ARGV[9] ~= '' then redis.call(write, p, 'locale', ARGV[9]) end
if (ARGV[16] or '') ~= '' then redis.call(write, p, 'timezone', ARGV[16]) end
local first = tonumber(redis.call('HGET', p, 'first_seen') or '-1')
if first < 0 or at < first then redis.call('HSET', p, 'first_seen', at) end
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[4], 0, ARGV[7])
if ARGV[12] ~= '' then
  redis.call('SET', KEYS[5], ARGV[7])
  redis.call('HSET', p, 'alias:' .. ARGV[12], '1')
end
redis.call('SET', KEYS[7], ARGV[7])
redis.call('HSET', p, 'alias:' .. ARGV[10] .. ':order:' .. ARGV[11], '1')
redis.call('ZADD', KEYS[6], at, ARGV[13])
redis.call('ZREMRANGEBYRANK', KEYS[6], 0, -tonumber(ARGV[14]) - 1)
return result
