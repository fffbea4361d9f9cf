-- Put customers where the at-risk ranking wants them, from the other ranked sets as they stand now: called after
-- anything that moves a customer's score, unhappy time or order value (and by the filling), so whichever call runs
-- last has seen every write before it. At risk: a score that, rounded to 2 decimals as the lists show it, is below
-- the threshold the ranking is kept for. Placed by order value when above 0, else by -1 + the newest unsatisfied
-- answer's time (ms) / 1e13 (-1 without one): the value-less after every valued one, newest unhappiness first.
-- The customers at risk are also ranked by their newest answer's time and by their number of answers, as the recent
-- and responses ranked sets score them.
-- KEYS: 1 score, 2 value, 3 unhappy ranked sets, 4 the at-risk ranking, 5 its state ("threshold"), 6 recent,
--       7 responses ranked sets, 8 the at-risk customers by recent, 9 by responses
-- ARGV: the customers' emails
-- Returns how many are at risk; nothing is placed while the ranking has no threshold.
local threshold = tonumber(redis.call('HGET', KEYS[5], 'threshold') or '')
if not threshold then return 0 end
local risky = 0
for i = 1, #ARGV do
  local email = ARGV[i]
  local score = tonumber(redis.call('ZSCORE', KEYS[1], email) or '')
  if score and tonumber(string.format('%.2f', score)) < threshold then
    local place = tonumber(redis.call('ZSCORE', KEYS[2], email) or '') or 0
    if place <= 0 then
      local unhappy = tonumber(redis.call('ZSCORE', KEYS[3], email) or '')
      place = unhappy and (-1 + unhappy / 1e13) or -1
    end
    redis.call('ZADD', KEYS[4], place, email)
    for k = 6, 7 do
      local value = redis.call('ZSCORE', KEYS[k], email)
      if value then
        redis.call('ZADD', KEYS[k + 2], value, email)
      else
        redis.call('ZREM', KEYS[k + 2], email)
      end
    end
    risky = risky + 1
  else
    redis.call('ZREM', KEYS[4], email)
    redis.call('ZREM', KEYS[8], email)
    redis.call('ZREM', KEYS[9], email)
  end
end
return risky
