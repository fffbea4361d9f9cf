"""Field/value pairs handed to a script: flattened by pairs_args, their count first, and read back in Lua by
pairs_lists (included as --#pairs), one rule for the outbox step and the carry of retired sums."""

from __future__ import annotations

from collections.abc import Iterable

PAIRS_LISTS = """\
local function pairs_lists(pos, n)
  local lists = {}
  for l = 1, n do
    local list = {}
    for i = 1, tonumber(ARGV[pos]) do list[i] = {ARGV[pos + 2 * i - 1], ARGV[pos + 2 * i]} end
    pos = pos + 1 + 2 * #list
    lists[l] = list
  end
  return lists, pos
end
"""


def pairs_args(items: Iterable[tuple[str, object]]) -> list[object]:
    """Flatten field/value pairs into a script's arguments, their count first."""
    flat: list[object] = []
    for name, value in items:
        flat += [name, repr(value) if isinstance(value, float) else value]
    return [len(flat) // 2, *flat]


def lua_pairs_lists() -> str:
    """Return the Lua of pairs_lists(pos, n): the n lists of pairs from ARGV[pos] on, each {field, value}, and the
    position after them."""
    return PAIRS_LISTS
