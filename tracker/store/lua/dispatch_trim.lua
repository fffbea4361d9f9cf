-- Drop a notice bucket's entries older than a cutoff that every configured target has passed.
-- KEYS: 1 the bucket's notice stream, 2 its cursors (hash)
-- ARGV: 1 cutoff (ms), 2.. the configured targets' names
-- Returns how many entries left. A target with no cursor yet has passed nothing: nothing leaves.
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local fms, fseq = tonumber(ARGV[1]), 0
for i = 2, #ARGV do
  local cursor = redis.call('HGET', KEYS[2], ARGV[i])
  if not cursor then
    return 0
  end
  local cms, cseq = parse(cursor)
  if cms < fms or (cms == fms and cseq + 1 < fseq) then
    fms, fseq = cms, cseq + 1
  end
end
return redis.call('XTRIM', KEYS[1], 'MINID', string.format('%.0f-%.0f', fms, fseq))
