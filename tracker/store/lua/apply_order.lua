-- Apply one order event to the order's bucket; refunds add up once per event, the newest status wins.
-- The customer's side (summary of their orders, timeline) is apply_customer.lua's.
-- KEYS (one ticket bucket): 1 order, 2 the bucket's due zset
-- ARGV: 1 okey, 2 at (ms), 3 event id, 4 status, 5 amount (minor units), 6 currency, 7 email,
--       8 post-purchase survey delay (ms, -1 off), 9 stale before (ms, or '' for no limit): a survey due
--       before this would already have expired, 10 now (wall clock, ms), 11 how long an idle order is kept (ms)
-- Returns {result, status, total ('' while no event gave one), refunded, currency, fresh}: result 2 when a
-- new fulfilment was too old to survey (not scheduled), else 1; fresh 1 when this event found no order
-- stored (a first event, or one after the order was forgotten).
-- Lifetime as for tickets (apply_ticket.lua): none while a survey is due, 'keep' once one was sent,
-- else the idle time.
local o, due = KEYS[1], KEYS[2]
local at = tonumber(ARGV[2])
local eid = ARGV[3]
local result = 1
local fresh = 1 - redis.call('EXISTS', o)
redis.call('HSETNX', o, 'customer', ARGV[7])
redis.call('HSETNX', o, 'currency', ARGV[6])
local created = tonumber(redis.call('HGET', o, 'created_at') or '-1')
if created < 0 or at < created then redis.call('HSET', o, 'created_at', ARGV[2]) end
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
    redis.call('HSET', o, 'status', ARGV[4], 'status_at', ARGV[2], 'status_eid', eid)
  end
end
-- A post-purchase survey is due while the order's newest status is fulfilled.
local member = 'o|' .. ARGV[1]
local new_survey = false
if tonumber(ARGV[8]) >= 0 then
  local now_status = redis.call('HGET', o, 'status')
  local status_at = redis.call('HGET', o, 'status_at')
  if now_status == 'fulfilled' then
    if redis.call('HGET', o, 'solved_at') ~= status_at then
      redis.call('HSET', o, 'solved_at', status_at)
      redis.call('HDEL', o, 'keep')
      local at_due = tonumber(status_at) + tonumber(ARGV[8])
      if ARGV[9] ~= '' and at_due < tonumber(ARGV[9]) then
        redis.call('ZREM', due, member)
        result = 2
      else
        redis.call('ZADD', due, at_due, member)
        new_survey = true
      end
    end
  elseif redis.call('HEXISTS', o, 'solved_at') == 1 then
    redis.call('HDEL', o, 'solved_at')
    redis.call('ZREM', due, member)
  end
end
if new_survey or redis.call('ZSCORE', due, member) then
  redis.call('PERSIST', o)
else
  local keep = redis.call('HGET', o, 'keep')
  redis.call('PEXPIREAT', o, keep or string.format('%d', tonumber(ARGV[10]) + tonumber(ARGV[11])))
end
local f = redis.call('HMGET', o, 'status', 'total', 'refunded', 'currency')
return {result, f[1] or '', f[2] or '', f[3] or '0', f[4] or '', fresh}
