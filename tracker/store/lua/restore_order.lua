-- Restore one order as export-log found it (a customer.profile line, tracker.ingest.profile_lines), merged with
-- what the replayed log's events of it wrote already, by apply_order.lua's own rules: each refund event adds once
-- (by its id), the newest status wins, so the order ends the same whichever of the two is applied first.
-- KEYS (one ticket bucket): 1 order
-- ARGV: 1 email, 2 currency, 3 total ('' none), 4 created_at (ms, '' none), 5 status ('' none),
--       6 status_at (ms, '' unknown: the status is written only when the order has none), 7 status event id,
--       8 now (wall clock, ms), 9 how long an idle order is kept (ms), 10.. refund event id, amount (minor units)
-- Returns {status, total, refunded, currency} as the order holds them now.
local o = KEYS[1]
local existed = redis.call('EXISTS', o)
redis.call('HSETNX', o, 'customer', ARGV[1])
if ARGV[2] ~= '' then redis.call('HSETNX', o, 'currency', ARGV[2]) end
-- The export holds every event of the order, those the log still has among them: its total is the one they left.
if ARGV[3] ~= '' then redis.call('HSET', o, 'total', ARGV[3]) end
if ARGV[4] ~= '' then
  local created = tonumber(redis.call('HGET', o, 'created_at') or '-1')
  if created < 0 or tonumber(ARGV[4]) < created then redis.call('HSET', o, 'created_at', ARGV[4]) end
end
for i = 10, #ARGV - 1, 2 do
  if redis.call('HSETNX', o, 'refund:' .. ARGV[i], ARGV[i + 1]) == 1 then
    redis.call('HINCRBY', o, 'refunded', ARGV[i + 1])
  end
end
if ARGV[5] ~= '' then
  local prev = redis.call('HGET', o, 'status')
  if not prev then
    redis.call('HSET', o, 'status', ARGV[5])
    if ARGV[6] ~= '' then redis.call('HSET', o, 'status_at', ARGV[6], 'status_eid', ARGV[7]) end
  elseif ARGV[6] ~= '' then
    local STEP = {created = 0, fulfilled = 1, refunded = 2, cancelled = 3}
    local at, eid = tonumber(ARGV[6]), ARGV[7]
    local cur = tonumber(redis.call('HGET', o, 'status_at') or '-1')
    local cur_eid = redis.call('HGET', o, 'status_eid') or ''
    local step, cur_step = STEP[ARGV[5]] or 0, STEP[prev] or 0
    if at > cur or (at == cur and (step > cur_step or (step == cur_step and eid > cur_eid))) then
      if not (ARGV[5] == 'refunded' and prev == 'cancelled') then
        redis.call('HSET', o, 'status', ARGV[5], 'status_at', ARGV[6], 'status_eid', eid)
      end
    end
  end
end
-- Kept as an idle order is (apply_order.lua); one a due survey keeps (no expiry) stays so.
local ttl = redis.call('PTTL', o)
local keep = tonumber(ARGV[8]) + tonumber(ARGV[9])
if existed == 0 or (ttl >= 0 and tonumber(ARGV[8]) + ttl < keep) then
  redis.call('PEXPIREAT', o, string.format('%d', keep))
end
local f = redis.call('HMGET', o, 'status', 'total', 'refunded', 'currency')
return {f[1] or '', f[2] or '', f[3] or '0', f[4] or ''}
