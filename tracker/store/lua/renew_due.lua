-- Renew the lease of claimed due entries this claim still holds (a newer solve or another worker's claim
-- rescored the others); return the members renewed, in the order given.
-- KEYS: 1 one due zset (all members in it); ARGV: 1 claimed score, 2 new lease until (ms), 3.. members
local held = {}
for i = 3, #ARGV do
  if tonumber(redis.call('ZSCORE', KEYS[1], ARGV[i]) or '-1') == tonumber(ARGV[1]) then
    redis.call('ZADD', KEYS[1], ARGV[2], ARGV[i])
    held[#held + 1] = ARGV[i]
  end
end
return held
