-- Append one shard's portion of a delivery (the events routed to that shard) once, in one step.
-- KEYS[1] portion mark, KEYS[2] stream, KEYS[3] kick key, KEYS[4] shard progress (cursor hash)
-- ARGV[1] dedupe ttl (s), ARGV[2] kick ttl (ms), ARGV[3..] event records (JSON)
-- Returns -1 when this portion was appended before (a retry), else {kick, entry ids...}: kick 1 when a drain
-- should be kicked, 0 when one is already due; the ids let the caller withdraw the portion (log_withdraw).
-- The portion mark is written after the entries: a script stopped by an error keeps what it wrote before,
-- and a mark without its entries would let a retry (and a check of the delivery's mark) take them as stored.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return -1
end
local appended = {0}
for i = 3, #ARGV do
  appended[i - 1] = redis.call('XADD', KEYS[2], '*', 'e', ARGV[i])
end
redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])
redis.call('HINCRBY', KEYS[4], 'appended', #ARGV - 2)
if redis.call('SET', KEYS[3], '1', 'NX', 'PX', ARGV[2]) then
  appended[1] = 1
end
return appended
