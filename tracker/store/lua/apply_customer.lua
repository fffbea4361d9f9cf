-- Apply one ticket or order event to the customer's own keys (one hash tag): profile, the index of
-- their tickets, the summary of their orders and the timeline. Runs after the ticket (order) bucket's
-- script, with what that returned.
-- KEYS (one customer): 1 profile, 2 customer's tickets (zset: tkey -> last applied, wall clock ms), 3 timeline
-- ARGV: 1 email, 2 at (ms), 3 name, 4 locale, 5 time zone (IANA or ''), 6 alias entry ('source:id' or ''),
--       7 timeline entry, 8 timeline size cap, 9 now (wall clock, ms), 10 how long timeline entries stay (ms),
--       11 'ticket' or 'order', 12 tkey or okey, 13 how long a ticket stays in the index (ms);
--       orders only: 14 status, 15 total ('' unknown), 16 refunded, 17 currency, 18 fresh (1: the order
--       was not stored before this event); last (after either): the source's organisation ('' none)
-- The profile holds one field per order, 'o:<okey>' = 'status|total|refunded|currency[|base]', so the
-- orders' value outlives the order hashes (which expire); base is what a forgotten order had refunded
-- before it came back with a later refund. The field also names the order's own alias key
-- (records.profile_aliases), so there is no 'alias:<source>:order:<id>' field.
-- Returns, for an order, the customer's live order value in their main currency (minor units) and that
-- currency; for a ticket, 0.
local p, idx, tl = KEYS[1], KEYS[2], KEYS[3]
local at = tonumber(ARGV[2])
local now = tonumber(ARGV[9])

-- The profile: the newest event names the customer.
local seen_at = tonumber(redis.call('HGET', p, 'seen_at') or '-1')
local write = 'HSETNX'
if at >= seen_at then
  write = 'HSET'
  redis.call('HSET', p, 'seen_at', ARGV[2])
end
if ARGV[3] ~= '' then redis.call(write, p, 'name', ARGV[3]) end
if ARGV[4] ~= '' then redis.call(write, p, 'locale', ARGV[4]) end
if ARGV[5] ~= '' then redis.call(write, p, 'timezone', ARGV[5]) end
if ARGV[#ARGV] ~= '' then redis.call(write, p, 'organisation', ARGV[#ARGV]) end
local first = tonumber(redis.call('HGET', p, 'first_seen') or '-1')
if first < 0 or at < first then redis.call('HSET', p, 'first_seen', ARGV[2]) end
if ARGV[6] ~= '' then redis.call('HSET', p, 'alias:' .. ARGV[6], '1') end

-- The timeline keeps what happened in the last ARGV[10] ms, at most ARGV[8] entries; the key goes
-- when its newest entry is that old.
local keep = tonumber(ARGV[10])
if at > now - keep then
  redis.call('ZADD', tl, at, ARGV[7])
end
redis.call('ZREMRANGEBYSCORE', tl, '-inf', '(' .. string.format('%d', now - keep))
redis.call('ZREMRANGEBYRANK', tl, 0, -tonumber(ARGV[8]) - 1)
local newest = redis.call('ZREVRANGE', tl, 0, 0, 'WITHSCORES')
if newest[2] then redis.call('PEXPIREAT', tl, string.format('%d', tonumber(newest[2]) + keep)) end

if ARGV[11] == 'ticket' then
  local index_keep = tonumber(ARGV[13])
  redis.call('ZADD', idx, now, ARGV[12])
  redis.call('ZREMRANGEBYSCORE', idx, '-inf', '(' .. string.format('%d', now - index_keep))
  redis.call('PEXPIREAT', idx, string.format('%d', now + index_keep))
  return 0
end

local field = 'o:' .. ARGV[12]
local old = redis.call('HGET', p, field)
local base, old_total = 0, ''
if old then
  local parts = {}
  for part in string.gmatch(old .. '|', '([^|]*)|') do parts[#parts + 1] = part end
  old_total = parts[2] or ''
  if ARGV[18] == '1' then
    base = tonumber(parts[3] or '0') or 0  -- forgotten and back: its earlier refunds still count
  else
    base = tonumber(parts[5] or '0') or 0
  end
end
local total = ARGV[15]
if total == '' then total = old_total end
local summary = ARGV[14] .. '|' .. total .. '|' .. string.format('%d', base + tonumber(ARGV[16])) .. '|' .. ARGV[17]
if base ~= 0 then summary = summary .. '|' .. string.format('%d', base) end
redis.call('HSET', p, field, summary)

-- The live value in the main currency (the one with the most): tracker.store.order_value.
--#order_value
local best, main = order_value(p)
return {string.format('%d', best), main}
