-- Drop a shard's entries appended before a cutoff that are applied: at or before the cursor and not waiting.
-- KEYS[1] stream, KEYS[2] progress (cursor hash), KEYS[3] waiting entries (zset)
-- ARGV[1] cutoff (ms)
-- Returns how many entries left.
local cursor = redis.call('HGET', KEYS[2], 'id')
if not cursor then
  return 0  -- nothing applied yet
end
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function before(ams, aseq, bms, bseq)
  return ams < bms or (ams == bms and aseq < bseq)
end
-- Entries below the floor go: the cutoff, the one after the cursor, and the oldest waiting entry all bound it.
local fms, fseq = tonumber(ARGV[1]), 0
local cms, cseq = parse(cursor)
if before(cms, cseq + 1, fms, fseq) then
  fms, fseq = cms, cseq + 1
end
for _, id in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  local wms, wseq = parse(id)
  if before(wms, wseq, fms, fseq) then
    fms, fseq = wms, wseq
  end
end
return redis.call('XTRIM', KEYS[1], 'MINID', string.format('%.0f-%.0f', fms, fseq))
