-- Mark every recovery case labelled, unless a case was carried in unlabelled since the walk that labelled them
-- began (such a write moves the mark to a new value).
-- KEYS: 1 the mark; ARGV: 1 the mark as the walk read it when it began ("" for none), 2 the mark to set ("1:<the
-- difference of the cases counted opened and labelled>"). Returns 1 when marked.
local now = redis.call('GET', KEYS[1]) or ''
if now ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1
