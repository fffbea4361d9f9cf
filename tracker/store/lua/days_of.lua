-- Read a range of days from a hash keyed by day (an entity's rollup "<day>|<field>", its daily buckets
-- "<day>:n"): a read costs the range or the hash, whichever is smaller, never every day the hash keeps when the
-- range is short.
-- KEYS: 1 the hash (a single key: nothing else in this script)
-- ARGV: 1 the first day, 2 the last day (both included; UTC days since 1970-01-01), 3 a split day or '', 4 how
--       many field suffixes follow, then the suffixes ('|n', ':v', '|r|csat5|4', ...)
-- Returns without a split the fields held of the range as a flat list of name, value (fields whose suffix is
-- not listed may come back too, for the caller to skip); with a split, for each listed suffix in order the sum
-- of its (integer) values on the days before the split, then for each the sum from the split on.
local first, last, split, count = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])

-- 'YYYY-MM-DD' of a day number (the proleptic Gregorian calendar, as Python's date.isoformat writes it).
local function day_name(z)
  z = z + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400 + (m <= 2 and 1 or 0)
  return string.format('%04d-%02d-%02d', y, m, d)
end

-- Call visit(name, value) for each field of the range the hash holds. A compact (listpack or ziplist)
-- hash is small and HMGET on it compares every name with every field, so it is read whole and filtered by day,
-- as is a hash holding no more fields than the range has names; a bigger one is asked for each name.
local function each(visit)
  if last < first then return end
  local key = KEYS[1]
  if redis.call('OBJECT', 'ENCODING', key) ~= 'hashtable'
      or redis.call('HLEN', key) <= (last - first + 1) * count then
    -- Fields start with their day, days have one width and the separators ('|', ':') sort before '~': a field is
    -- of the range when it sorts from the first day's name to the last day's name followed by '~'.
    local low, high = day_name(first), day_name(last) .. '~'
    local all = redis.call('HGETALL', key)
    for i = 1, #all, 2 do
      local name = all[i]
      if name >= low and name < high then visit(name, all[i + 1]) end
    end
    return
  end
  local names = {}
  for z = first, last do
    local day = day_name(z)
    for s = 5, count + 4 do names[#names + 1] = day .. ARGV[s] end
  end
  -- unpack spreads a limited number of values: ask in slices.
  for start = 1, #names, 1000 do
    local slice = {}
    for i = start, math.min(start + 999, #names) do slice[#slice + 1] = names[i] end
    local values = redis.call('HMGET', key, unpack(slice))
    for i = 1, #slice do
      if values[i] then visit(slice[i], values[i]) end
    end
  end
end

local found = {}
if not split then
  each(function(name, value)
    found[#found + 1] = name
    found[#found + 1] = value
  end)
  return found
end
local position, boundary = {}, day_name(split)
for s = 1, count do
  position[ARGV[s + 4]] = s
  found[s], found[count + s] = 0, 0
end
each(function(name, value)
  local s = position[string.sub(name, 11)]
  if s then
    if name >= boundary then s = s + count end
    found[s] = found[s] + tonumber(value)
  end
end)
return found
