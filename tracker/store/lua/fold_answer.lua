-- `tracker upgrade-store`: fold one answer hash of key layout 2 into its survey's hash and delete it, in one step,
-- so a run stopped anywhere can simply be run again.
-- KEYS: 1 the layout-2 answer hash, 2 the survey's hash (one survey bucket)
-- The answer's fields land in the survey's hash as this layout stores them: `reason` (the follow-up reason the
-- customer picked) as `answer_reason` (the survey's `reason` says why it was skipped or failed), `at` as the
-- survey's `answered_at` (the same time), empty values left out; the fields layout 2 copied from the survey
-- (sid, scale, customer, ticket, attribution, subject) only fill what the survey's hash lacks.
-- Returns 1 when folded now, 0 when there is no answer hash (folded before), 2 when the survey's hash holds an
-- answer already (written by this layout, which is newer): the old hash is dropped.
local r, s = KEYS[1], KEYS[2]
if redis.call('EXISTS', r) == 0 then return 0 end
if redis.call('HEXISTS', s, 'rating') == 1 then
  redis.call('DEL', r)
  return 2
end
local copied = {sid = true, scale = true, customer = true, tkey = true, ticket_id = true, source = true,
                agent_id = true, agent_name = true, team = true, brand = true, channel = true, subject = true,
                answered_via = true}
local renamed = {reason = 'answer_reason', at = 'answered_at'}
local flat = redis.call('HGETALL', r)
for i = 1, #flat, 2 do
  local name, value = flat[i], flat[i + 1]
  if value ~= '' then
    if copied[name] then
      redis.call('HSETNX', s, name, value)
    else
      redis.call('HSET', s, renamed[name] or name, value)
    end
  end
end
redis.call('DEL', r)
return 1
