"""A customer's live order value, as the Lua that sums it from their profile's order fields: one rule for the script
that applies an order event (apply_customer.lua) and the one that restores a carried profile (restore_profile.lua)."""

from __future__ import annotations

ORDER_VALUE = """\
local function order_value(profile)
  local rows = {}
  local flat = redis.call('HGETALL', profile)
  for i = 1, #flat, 2 do
    if string.sub(flat[i], 1, 2) == 'o:' then rows[#rows + 1] = {flat[i], flat[i + 1]} end
  end
  table.sort(rows, function(a, b) return a[1] < b[1] end)
  local totals, order = {}, {}
  for _, row in ipairs(rows) do
    local parts = {}
    for part in string.gmatch(row[2] .. '|', '([^|]*)|') do parts[#parts + 1] = part end
    if parts[1] ~= 'cancelled' then
      local refunded = tonumber(parts[3] or '0') or 0
      local value = (tonumber(parts[2] or '') or refunded) - refunded
      local cur = parts[4] or ''
      if totals[cur] == nil then
        totals[cur] = 0
        order[#order + 1] = cur
      end
      totals[cur] = totals[cur] + value
    end
  end
  local main, best = '', 0
  for _, cur in ipairs(order) do
    if main == '' or totals[cur] > best then main, best = cur, totals[cur] end
  end
  return best, main, #rows
end
"""


def lua_order_value() -> str:
    """Return the Lua a script saying `--#order_value` gets (base.Script puts it there): order_value(profile), the
    live value per currency of the profile's orders (cancelled ones count nothing, refunds are taken off, one whose
    total is not known yet counts nothing), in order key order: (the main currency's value in minor units, that
    currency, how many orders)."""
    return ORDER_VALUE
