-- Settle a survey that can no longer be answered (beat's expiry pass, `tracker upgrade-store`): pack the values
-- of its coded fields but its status into one field and drop those fields, by the rules of
-- tracker.store.survey_codes (PACKED and the rest: `pack` comes from there, in place of the line below). Only a
-- sent or answered survey is settled, not one whose values pack cannot take, nor one whose packed value would be
-- longer than a compact hash may hold (the hash would become a hash table, bigger than its fields were). Safe at
-- any time: whatever reads or writes a survey's fields reads the packed field too or thaws it first.
-- KEYS: 1 survey
-- ARGV: 1 the longest value a compact hash may hold (hash-max-listpack-value)
-- Returns 1 when settled now, 0 when not (gone, settled already, not sent or answered, or a value unfit).
--#thaw
local s = KEYS[1]
local status = redis.call('HGET', s, 'st')  -- status (tracker.store.survey_codes)
if (status ~= 'sent' and status ~= 'answered') or settled(s) then return 0 end
local value = pack(s)
if not value or #value > tonumber(ARGV[1]) then return 0 end
redis.call('HSET', s, PACKED_FIELD, value)
redis.call('HDEL', s, unpack(PACKED))
return 1
