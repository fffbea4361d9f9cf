-- Apply one entity's step of a survey bucket's outbox entry, exactly once: only when the entry is newer than
-- the entity's high-water mark for that bucket (an entry forwarded again after a crash changes nothing twice).
-- KEYS: 1 the entity's marks, 2 its sums (aggregate, or retired sums), 3 its daily buckets (or retired daily),
--       4 its rollup (for a retired step the retired sums, which keep the rollup fields beside the sums);
--       a customer's also 5 responses, 6 surveys, 7 profile, 8 unhappy answers, 9 aggregate
-- The marks are fields of the live sums' hash, and a customer's live sums and marks fields of their profile
-- (tracker.store.sums): KEYS 1, 9 (and 2 and 7 for a live customer step) may name one key, never deleted whole.
-- A step may also stand for an entity's steps of several entries of one batch, their deltas summed (a non-customer
-- entity's only): ARGV 2 is then "<first>-<last>", the first and last of those entries' sequence numbers, and the
-- step applies whole when the mark is older than the first, is a no-op when it is the last or newer, and else
-- (a forwarder died part of the way through them) changes nothing and returns {-1, 0}: step them one by one.
-- ARGV: 1 bucket, 2 the entry's sequence number, 3 sid, 4 '1' when the step moves live sums (an entity left
--       with nothing counted goes, as a rebuild would leave it), then five lists, each a count and that many
--       field/increment pairs: the sums' integer, float and daily increments, the rollup's integer and float
--       increments; then for a customer the responses, surveys and unhappy answers changes (each an op,
--       'a' add or 'r' remove or '' none, and a time), the answer time that becomes the profile's last
--       response when it is not older ('' none), the score card's copy of that answer ('' none: an entry
--       from before the copy), kept in the profile's last_response_card while it names the newest answer, and
--       for a customer's live day buckets the days kept and today's number (tracker.store.customer_days)
-- Returns {applied, alive, answers} (answers '' unless a live step leaves it alive), for a customer instead
-- {applied, alive} followed by its n, weight, weighted, last response time and newest unhappy answer's time ('' when
-- absent), what the ranked sets follow.
--#days
--#pairs
--#sums
local bucket, sid = ARGV[1], ARGV[3]
local first, seq = string.match(ARGV[2], '^(%d+)-(%d+)$')
seq = tonumber(seq or ARGV[2])
first = tonumber(first) or seq
local mark = tonumber(redis.call('HGET', KEYS[1], bucket) or '0')
if mark >= first and mark < seq then return {-1, 0} end
local live = ARGV[4] == '1'
local customer = #KEYS >= 9
local lists, pos = pairs_lists(5, 5)
local ints, floats, daily, rints, rfloats = unpack(lists)
local sums, days, rollup = KEYS[2], KEYS[3], KEYS[4]

local function zop(key, op, at)
  if op == 'a' then redis.call('ZADD', key, at, sid) elseif op == 'r' then redis.call('ZREM', key, sid) end
end

local applied = 0
if seq > mark then
  applied = 1
  for _, p in ipairs(ints) do redis.call('HINCRBY', sums, p[1], p[2]) end
  for _, p in ipairs(floats) do redis.call('HINCRBYFLOAT', sums, p[1], p[2]) end
  -- A day bucket or rollup count that drops to zero goes, as a rebuild would not write it.
  for _, p in ipairs(daily) do
    if redis.call('HINCRBY', days, p[1], p[2]) == 0 then redis.call('HDEL', days, p[1]) end
  end
  local standing = {}  -- the rollup's counts ("...|n") this step leaves above zero: those stand, unasked
  for _, p in ipairs(rints) do
    if redis.call('HINCRBY', rollup, p[1], p[2]) == 0 then
      redis.call('HDEL', rollup, p[1])
    elseif string.sub(p[1], -2) == '|n' then
      standing[p[1]] = true
    end
  end
  for _, p in ipairs(rfloats) do
    local total = tonumber(redis.call('HINCRBYFLOAT', rollup, p[1], p[2]))
    -- A float sum ("<day>|weight", or a crossed one: "<day>|<label>|weight", "x|<label>|weight") lives only
    -- while its answers' count beside it ("...|n") does and it is not zero (answers of value 0 weigh nothing):
    -- no rounding residue a rebuild has not.
    local n = string.match(p[1], '^(.*)|') .. '|n'
    if math.abs(total) < 1e-9 or (not standing[n] and redis.call('HEXISTS', rollup, n) == 0) then
      redis.call('HDEL', rollup, p[1])
    end
  end
  if customer then
    if live and #daily > 0 and (ARGV[pos + 9] or '') ~= '' then
      keep_days(days, tonumber(ARGV[pos + 8]), tonumber(ARGV[pos + 9]))
    end
    zop(KEYS[5], ARGV[pos], ARGV[pos + 1])
    zop(KEYS[6], ARGV[pos + 2], ARGV[pos + 3])
    zop(KEYS[8], ARGV[pos + 4], ARGV[pos + 5])
    local last, card = ARGV[pos + 6], ARGV[pos + 7] or ''
    local newest = redis.call('HGET', KEYS[7], 'last_response_sid')
    if last ~= '' and tonumber(last) >= tonumber(redis.call('HGET', KEYS[7], 'last_response_at') or '-1') then
      redis.call('HSET', KEYS[7], 'last_response_at', last, 'last_response_sid', sid)
      newest = sid
    end
    -- The card's copy follows the answer last_response_sid names: a change of it (even one not newer), or
    -- its leaving ("<sid>|": the card shows none). No copy: the card reads the answer itself.
    if newest == sid then
      if last ~= '' and card ~= '' then
        redis.call('HSET', KEYS[7], 'last_response_card', card)
      elseif ARGV[pos] == 'r' then
        redis.call('HSET', KEYS[7], 'last_response_card', sid .. '|')
      elseif last ~= '' then
        redis.call('HDEL', KEYS[7], 'last_response_card')
      end
    end
  end
  redis.call('HSET', KEYS[1], bucket, seq)
end

-- A live entity's sums, read once: without answers its weights go; with nothing counted, it goes.
local alive, answers = 1, ''
if live then
  local counted = redis.call('HMGET', sums, 'n', 'sent')
  answers = counted[1] or '0'
  if applied == 1 and tonumber(answers) <= 0 then redis.call('HDEL', sums, 'weight', 'weighted') end
  if tonumber(answers) <= 0 and tonumber(counted[2] or '0') <= 0 then
    alive, answers = 0, ''
    if applied == 1 then
      drop_sums(sums)
      redis.call('DEL', days, rollup)
    end
  end
end
-- A live entity's answers follow, what its kind's ranked set orders it by.
if not customer then return {applied, alive, answers} end
local state = redis.call('HMGET', KEYS[9], 'n', 'weight', 'weighted')
local unhappy = redis.call('ZREVRANGE', KEYS[8], 0, 0, 'WITHSCORES')
return {applied, alive, state[1] or '', state[2] or '', state[3] or '',
        redis.call('HGET', KEYS[7], 'last_response_at') or '', unhappy[2] or ''}
