-- Restore what a customer's profile held where export-log read it (a customer.profile line,
-- tracker.ingest.profile_lines): their name, locale, time zone and organisation as the newest event gave them
-- (apply_customer.lua's rule: the line counts as an event at the profile's seen_at), their first time seen, their
-- ids per source and their orders' summaries. Safe to repeat, and in any order with the replayed log's events.
-- KEYS (one customer): 1 profile
-- ARGV: 1 seen_at (ms, '' none), 2 name, 3 locale, 4 time zone, 5 organisation, 6 first_seen (ms, '' none),
--       7 number of alias entries n, 8..7+n alias entries 'source:id', then triples: order field 'o:<okey>', its
--       summary 'status|total|refunded|currency[|base]', and 'set' (made from the order hash as restore_order.lua
--       left it: always written) or 'keep' (no order hash was left: written unless the field is there)
-- Returns {fields changed, the live order value in the main currency (minor units), that currency, name}.
local p = KEYS[1]
local changed = 0
local function put(field, value, force)
  local old = redis.call('HGET', p, field)
  if old == value or (old and not force) then return end
  redis.call('HSET', p, field, value)
  changed = changed + 1
end

local newest = false
if ARGV[1] ~= '' then
  local seen_at = tonumber(redis.call('HGET', p, 'seen_at') or '-1')
  if tonumber(ARGV[1]) >= seen_at then
    newest = true
    put('seen_at', ARGV[1], true)
  end
end
if ARGV[2] ~= '' then put('name', ARGV[2], newest) end
if ARGV[3] ~= '' then put('locale', ARGV[3], newest) end
if ARGV[4] ~= '' then put('timezone', ARGV[4], newest) end
if ARGV[5] ~= '' then put('organisation', ARGV[5], newest) end
if ARGV[6] ~= '' then
  local first = tonumber(redis.call('HGET', p, 'first_seen') or '-1')
  if first < 0 or tonumber(ARGV[6]) < first then put('first_seen', ARGV[6], true) end
end
local n = tonumber(ARGV[7])
for i = 8, 7 + n do put('alias:' .. ARGV[i], '1', false) end
local orders = 0
for i = 8 + n, #ARGV - 2, 3 do
  put(ARGV[i], ARGV[i + 1], ARGV[i + 2] == 'set')
  orders = orders + 1
end

-- The live value in the main currency, as apply_customer.lua sums it (tracker.store.order_value).
--#order_value
local best, main, orders_held = order_value(p)
if orders_held == 0 then main = '-' end  -- no orders: no value to rank by
return {changed, string.format('%d', best), main, redis.call('HGET', p, 'name') or ''}
