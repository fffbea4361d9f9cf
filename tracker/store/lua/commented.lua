-- Say which of some surveys of one bucket hold a comment that is not empty: the dashboard's newest comments look
-- among the newest answers, most of which have none, and this reads each where it is (its hash's "comment", or
-- the comment item of its filed value: tracker.store.filed) without sending a survey back.
-- KEYS: 1..n the surveys' hashes, n+1..2n their filing hashes (all in the bucket's slot); ARGV: the n sids.
-- Returns the sids, of those given, that hold a comment, in the order given.
local function filed_comment(value)
  if not string.find(value, '7:comment', 1, true) then return false end  -- most filed answers: no comment
  local at, is_name = 1, true
  local name
  while at <= #value do
    local colon = string.find(value, ':', at, true)
    if not colon then return false end
    local length = tonumber(string.sub(value, at, colon - 1))
    if not length then return false end
    local item = string.sub(value, colon + 1, colon + length)
    if is_name then name = item elseif name == 'comment' then return item ~= '' end
    is_name, at = not is_name, colon + length + 1
  end
  return false
end

local n, found = #ARGV, {}
for i = 1, n do
  local comment = redis.call('HGET', KEYS[i], 'comment')
  if comment then
    if comment ~= '' then found[#found + 1] = ARGV[i] end
  else
    local value = redis.call('HGET', KEYS[n + i], ARGV[i])
    if value and filed_comment(value) then found[#found + 1] = ARGV[i] end
  end
end
return found
