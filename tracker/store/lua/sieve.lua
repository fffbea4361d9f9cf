-- Say which of some surveys of one bucket may pass a reader's filters: those whose stored values hold every
-- needle (tracker.store.sieve), read where they are (the survey's hash and its filed value: tracker.store.filed)
-- without sending a survey back. A survey in neither place (gone) holds nothing.
-- KEYS: 1..n the surveys' hashes, n+1..2n their filing hashes (all in the bucket's slot);
-- ARGV: 1..n the sids, n+1.. the needles. Returns the sids, of those given, that hold every needle, in order.
local n = #KEYS / 2
local found = {}
for i = 1, n do
  local values = redis.call('HVALS', KEYS[i])
  local filed = redis.call('HGET', KEYS[n + i], ARGV[i])
  if filed then values[#values + 1] = filed end
  if #values > 0 then
    local stored = table.concat(values, '\31')
    local holds = true
    for j = n + 1, #ARGV do
      if not string.find(stored, ARGV[j], 1, true) then
        holds = false
        break
      end
    end
    if holds then found[#found + 1] = ARGV[i] end
  end
end
return found
