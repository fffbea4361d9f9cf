-- Settle a survey that can no longer be answered (beat's expiry pass, `tracker upgrade-store`): pack the values
-- of its coded fields but its status into one field and drop those fields, by the rules of
-- tracker.store.survey_codes (PACKED and the rest: `pack` comes from there, in place of the line below), then file
-- it into its filing hash (tracker.store.filed: `file`) unless it has an expiry. Only a sent or answered survey is
-- settled, not one whose values pack cannot take, nor one whose packed value would be longer than a compact hash
-- may hold (the hash would become a hash table, bigger than its fields were); it is filed only when all it holds
-- fits in one such value. Safe at any time: whatever reads or writes a survey's fields reads the packed field and
-- the filed value too, or thaws it first.
-- KEYS: 1 survey, 2 its filing hash (all in the survey's slot)
-- ARGV: 1 the longest value a compact hash may hold (hash-max-listpack-value)
-- Returns 1 when settled now, 2 when it was settled and is filed now, 0 when neither (gone, filed already, not
-- sent or answered, or a value unfit).
--#thaw
local s, filed, longest = KEYS[1], KEYS[2], tonumber(ARGV[1])
if redis.call('EXISTS', s) == 0 then return 0 end  -- gone, or filed with nothing written beside it since
unfile(s, filed)  -- filed, with a field written beside it since: filed again below, that field with it
local status = redis.call('HGET', s, 'st')
if status ~= 'sent' and status ~= 'answered' then return 0 end
local outcome = 2
if not settled(s) then
  local value = pack(s)
  if not value or #value > longest then return 0 end
  redis.call('HSET', s, PACKED_FIELD, value)
  redis.call('HDEL', s, unpack(PACKED))
  outcome = 1
end
if file(s, filed, longest) or outcome == 1 then return outcome end
return 0
