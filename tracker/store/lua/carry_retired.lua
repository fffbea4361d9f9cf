-- Replay: carry one entity's retired sums from the install an export came from (what its retention deleted, which
-- still counts there), once. They are added to the entity's retired sums (which a rebuild adds back) and to its live
-- sums, day buckets and rollup: retention leaves the live numbers as they were, so where the export came from the
-- live numbers hold them too. A mark in the retired hash (ARGV 1) says they were carried: a second replay of the file
-- counts nothing twice. Adds as outbox_step.lua adds (a count that drops to zero goes, a rollup's float sum lives
-- only beside its count and when not zero), so the hashes hold what the steps of those answers would have left.
-- KEYS: 1 retired sums (with the retired rollup fields beside them), 2 retired day buckets, 3 live sums (a
--       customer's profile), 4 live day buckets, 5 live rollup (a customer has none: nothing is written there)
-- ARGV: 1 the mark's field, 2 '1' for a customer, then five lists, each a count and that many field/value pairs:
--       the sums' integers, the sums' floats, the day buckets, the rollup's integers, the rollup's floats; then for
--       a customer the days their live buckets keep and today's number (tracker.store.customer_days), and their
--       newest answer, which retention deleted (sid and time, '' none): it is the profile's last response unless a
--       newer one is there.
-- Returns {1 carried now or 0 carried before, the live n, the live sent}.
--#days
--#pairs
local mark, customer = ARGV[1], ARGV[2] == '1'
local function counted()
  local live = redis.call('HMGET', KEYS[3], 'n', 'sent')
  return live[1] or '0', live[2] or '0'
end
if redis.call('HEXISTS', KEYS[1], mark) == 1 then
  local n, sent = counted()
  return {0, n, sent}
end
local lists, pos = pairs_lists(3, 5)
local ints, floats, daily, rints, rfloats = unpack(lists)

local function add_sums(key)
  for _, p in ipairs(ints) do redis.call('HINCRBY', key, p[1], p[2]) end
  for _, p in ipairs(floats) do redis.call('HINCRBYFLOAT', key, p[1], p[2]) end
end
local function add_counts(key, list)
  for _, p in ipairs(list) do
    if redis.call('HINCRBY', key, p[1], p[2]) == 0 then redis.call('HDEL', key, p[1]) end
  end
end
local function add_rollup(key)
  add_counts(key, rints)
  for _, p in ipairs(rfloats) do
    local total = tonumber(redis.call('HINCRBYFLOAT', key, p[1], p[2]))
    local n = string.match(p[1], '^(.*)|') .. '|n'
    if math.abs(total) < 1e-9 or redis.call('HEXISTS', key, n) == 0 then redis.call('HDEL', key, p[1]) end
  end
end

add_sums(KEYS[1])
add_rollup(KEYS[1])
add_counts(KEYS[2], daily)
add_sums(KEYS[3])
add_counts(KEYS[4], daily)
if customer then
  if #daily > 0 then keep_days(KEYS[4], tonumber(ARGV[pos]), tonumber(ARGV[pos + 1])) end
  local sid, at = ARGV[pos + 2] or '', ARGV[pos + 3] or ''
  -- As a retire step leaves it: the profile still names the answer, its copy for the card says it left ("<sid>|").
  if sid ~= '' and tonumber(at) >= tonumber(redis.call('HGET', KEYS[3], 'last_response_at') or '-1') then
    redis.call('HSET', KEYS[3], 'last_response_at', at, 'last_response_sid', sid, 'last_response_card', sid .. '|')
  end
else
  add_rollup(KEYS[5])
end
redis.call('HSET', KEYS[1], mark, '1')
local n, sent = counted()
return {1, n, sent}
