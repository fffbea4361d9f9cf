-- `tracker upgrade-store`: rename the fields of one survey's hash that layout 4 and earlier stored by name to the
-- codes this layout stores them under (tracker.store.survey_codes), in one step, so a run stopped anywhere can
-- simply be run again. A code already there (written by this layout) stands; the old name goes either way.
-- KEYS: 1 the survey's hash
-- ARGV: name, code pairs
-- Returns how many names the hash held.
local s = KEYS[1]
local held = 0
for i = 1, #ARGV, 2 do
  local value = redis.call('HGET', s, ARGV[i])
  if value then
    held = held + 1
    redis.call('HSETNX', s, ARGV[i + 1], value)
    redis.call('HDEL', s, ARGV[i])
  end
end
return held
