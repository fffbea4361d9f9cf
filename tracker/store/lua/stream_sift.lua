-- Read a page of a stream in Redis and send back only the entries that may be about one customer (an erasure):
-- those whose values, in lower case, hold one of the needles (tracker.store.stream_sift). The caller tests each
-- one it gets exactly, so a walk of a long stream sends back the candidates, not the stream.
-- KEYS[1] stream; ARGV[1] the id read last ("-" at first), ARGV[2] page size, ARGV[3..] needles (in lower case)
-- Returns {} past the end, else {the page's last id, id, {field, value, ...}, id, {...}, ...}.
local entries
if ARGV[1] == '-' then
  entries = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', ARGV[2])
else
  entries = redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', ARGV[2])
end
if #entries == 0 then
  return {}
end
local found = {entries[#entries][1]}
for _, entry in ipairs(entries) do
  local fields = entry[2]
  local text = fields[2] or ''
  if #fields > 2 then  -- an entry is one field, its event; anything else is tested on all of its values
    local values = {}
    for i = 2, #fields, 2 do
      values[#values + 1] = fields[i]
    end
    text = table.concat(values, '\31')
  end
  text = string.lower(text)
  for j = 3, #ARGV do
    if string.find(text, ARGV[j], 1, true) then
      found[#found + 1] = entry[1]
      found[#found + 1] = fields
      break
    end
  end
end
return found
