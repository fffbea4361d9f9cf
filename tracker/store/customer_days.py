"""What a customer's day buckets keep: the days their score card's trend can still read, and no longer.

A customer's day buckets (keys.daily("customer", email): "<day>:n" answers and "<day>:v" their value6 sum, per UTC
day) feed one figure, the trend of their score card and of the customer lists, which compares the last TREND_DAYS
days up to today with the TREND_DAYS before (tracker.scores.maths.trend). So they hold only the days after today
less KEPT_DAYS, which is every day a trend can read, and the key expires KEPT_DAYS after the newest day it holds,
at the midnight (UTC) from which no trend reaches it: a customer quiet for two months holds none, where every day
they were ever answered on stayed before. A write drops the days that have left (a day that has left can never
come back: an answer recorded with an older time changes a day that no trend reads).

Both writers keep the rule, with the day of their clock: a customer's outbox step (outbox_step.lua, through the
Lua below, which base.Script puts where a script says `--#days`) and the rebuild (kept_days, expire_at_ms), so a
rebuild writes what the steps left; the buckets of a customer whose newest day has left are gone either way.
(Another entity's day buckets and rollup feed the summaries of any range, and keep every day.)
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from tracker.model import DAY_MS, TREND_DAYS

KEPT_DAYS = 2 * TREND_DAYS
_EPOCH = date(1970, 1, 1).toordinal()

__all__ = ["KEPT_DAYS", "expire_at_ms", "kept_days", "lua_keep_days", "today"]


def _day_number(day: str) -> int | None:
    """Return a day's number (days since 1970-01-01) from its name (YYYY-MM-DD), None for another name."""
    try:
        return date.fromisoformat(day).toordinal() - _EPOCH if len(day) == 10 else None
    except ValueError:
        return None


def today(now_ms: int) -> int:
    """Return the number of the UTC day a time falls on (days since 1970-01-01), what the steps pass to keep_days."""
    return now_ms // DAY_MS


def kept_days(days: Mapping[str, tuple[int, int]], now_ms: int) -> dict[str, tuple[int, int]]:
    """Return the days (day -> (answers, value6)) a customer's buckets hold of these at now_ms: those after today
    less KEPT_DAYS, which counted something."""
    cutoff = today(now_ms) - KEPT_DAYS
    return {day: counted for day, counted in days.items()
            if any(counted) and (number := _day_number(day)) is not None and number > cutoff}


def expire_at_ms(days: Mapping[str, tuple[int, int]]) -> int | None:
    """Return when a customer's buckets holding these days expire (ms), None when they hold none."""
    numbers = [number for day, counted in days.items() if any(counted) and (number := _day_number(day)) is not None]
    return (max(numbers) + KEPT_DAYS) * DAY_MS if numbers else None


def lua_keep_days() -> str:
    """Return the Lua twin of the rule: keep_days(key, kept, today), run after a customer's step wrote its buckets."""
    return f"""-- A customer's day buckets hold the days after today less `kept` and expire `kept` days after the newest
-- (tracker.store.customer_days, which this text comes from). today: the number of the UTC day (since 1970-01-01).
local function day_number(name)
  local y, m, d = string.match(name, '^(%d%d%d%d)-(%d%d)-(%d%d)')
  if not y then return nil end
  y, m, d = tonumber(y), tonumber(m), tonumber(d)
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local doy = math.floor((153 * ((m + 9) % 12) + 2) / 5) + d - 1
  return era * 146097 + yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy - 719468
end
local function keep_days(key, kept, today)
  local gone, newest = {{}}, nil
  for _, field in ipairs(redis.call('HKEYS', key)) do
    local number = day_number(field)
    if number and number <= today - kept then
      gone[#gone + 1] = field
    elseif number and (not newest or number > newest) then
      newest = number
    end
  end
  for i = 1, #gone, 1000 do redis.call('HDEL', key, unpack(gone, i, math.min(i + 999, #gone))) end
  if newest then redis.call('PEXPIREAT', key, string.format('%.0f', (newest + kept) * {DAY_MS})) end
end
"""
