-- Rebuild the score card's copy of a customer's newest answer (rebuild-scores): write it only when the profile
-- still holds what the copy was computed from (its last_response_sid, and the copy then), so an outbox step
-- that changed either meanwhile (and wrote the copy itself) wins, and an erased profile stays erased.
-- KEYS: 1 profile
-- ARGV: 1 last_response_sid as read, 2 last_response_card as read ('' none), 3 the copy to write
-- Returns 1 when written, 0 when the profile moved on.
local now = redis.call('HMGET', KEYS[1], 'last_response_sid', 'last_response_card')
if (now[1] or '') ~= ARGV[1] or (now[2] or '') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'last_response_card', ARGV[3])
return 1
