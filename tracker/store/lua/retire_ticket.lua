-- Retention: delete a ticket nothing has touched since the cutoff, unless a survey about it is still due.
-- KEYS: 1 ticket, 2 its status history, 3 its bucket's due set (all in the ticket's slot)
-- ARGV: 1 tkey, 2 cutoff (ms)
-- Returns 1 when the ticket was deleted, 0 when it is kept (newer, or due), -1 when there is none (the
-- caller forgets the customer's membership of both the deleted and the missing).
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local cutoff = tonumber(ARGV[2])
for _, name in ipairs({'created_at', 'meta_at', 'status_at', 'solved_at'}) do
  local value = tonumber(redis.call('HGET', KEYS[1], name) or '')
  if value and value >= cutoff then return 0 end
end
if redis.call('ZSCORE', KEYS[3], ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
return 1
