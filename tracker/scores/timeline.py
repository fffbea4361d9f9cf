"""A customer's timeline: tickets, orders, surveys and answers in time order, a page at a time."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from tracker.model import TimelineEntry
from tracker.scores.cards import public_ref
from tracker.store import Store
from tracker.store.timeline import TIMELINE_PARTS, timeline_entry

CURSOR = re.compile(r"^([ad])(\d{1,15})((?:\.\d{1,9}){" + str(len(TIMELINE_PARTS)) + "})$")


@dataclass(frozen=True)
class Position:
    """Where a page ended: the time of its last entry and, per part, how many entries at that time were shown."""

    newest_first: bool
    at_ms: int
    shown: tuple[int, ...]


def encode_cursor(position: Position) -> str:
    """Write a position as the opaque cursor a client sends back."""
    text = ("d" if position.newest_first else "a") + str(position.at_ms) + "".join(f".{n}" for n in position.shown)
    return base64.urlsafe_b64encode(text.encode("ascii")).decode("ascii").rstrip("=")


def decode_cursor(cursor: str, newest_first: bool) -> Position:
    """Read a cursor back; ValueError when it was not made by encode_cursor for this order."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        raise ValueError("Not a valid cursor.") from None
    match = CURSOR.match(text)
    if not match:
        raise ValueError("Not a valid cursor.")
    if (match.group(1) == "d") != newest_first:
        raise ValueError(f"This cursor pages order={match.group(1).replace('a', 'asc').replace('d', 'desc')}; "
                         "send the same order with it.")
    return Position(newest_first, int(match.group(2)), tuple(int(n) for n in match.group(3)[1:].split(".")))


def customer_timeline(store: Store, email: str, limit: int = 200, newest_first: bool = False,
                      after: Position | None = None) -> tuple[list[TimelineEntry], Position | None]:
    """Return a page of a customer's timeline (oldest first unless asked) and where the next page starts.

    Reads at most limit + 1 entries of each part past the cursor (plus what ties at its time), never the
    whole timeline.
    """
    skips = after.shown if after else (0,) * len(TIMELINE_PARTS)
    slices = store.timeline_rows(email, after.at_ms if after else None, skips, newest_first, limit + 1)
    rows = [(at, part, i, member) for part, rows in enumerate(slices) for i, (at, member) in enumerate(rows)]
    # Within one time, parts keep their order and each part its own (Redis's) order, in both directions.
    rows.sort(key=lambda row: (-row[0] if newest_first else row[0], row[1], row[2]))
    page = rows[:limit]
    following = None
    if len(rows) > limit:
        last = page[-1][0]
        carried = skips if after and after.at_ms == last else (0,) * len(TIMELINE_PARTS)
        shown = tuple(carried[part] + sum(1 for at, p, _, _ in page if at == last and p == part)
                      for part in range(len(TIMELINE_PARTS)))
        following = Position(newest_first, last, shown)
    return _describe(store, page), following


def _describe(store: Store, page: list[tuple[int, int, int, str]]) -> list[TimelineEntry]:
    survey_ids = [member for _, part, _, member in page if TIMELINE_PARTS[part] == "surveys"]
    answer_ids = [member for _, part, _, member in page if TIMELINE_PARTS[part] == "responses"]
    surveys, answers = store.timeline_details(survey_ids, answer_ids)
    entries: list[TimelineEntry] = []
    for at, part, _, member in page:
        kind = TIMELINE_PARTS[part]
        if kind == "timeline":
            entries.append(timeline_entry(member, at))
        elif kind == "surveys" and (survey := surveys.get(member)) is not None:
            status = "sent" if survey.status == "answered" else survey.status
            entries.append(TimelineEntry(at, f"survey.{status}", survey=survey.sid, ticket=public_ref(survey.tkey),
                                         reason=survey.reason or None))
        elif kind == "responses" and (answer := answers.get(member)) is not None:
            entries.append(TimelineEntry(at, "answer", survey=answer.sid, ticket=public_ref(answer.tkey),
                                         rating=answer.rating, scale=answer.scale, satisfied=answer.satisfied,
                                         comment=answer.comment, reason=answer.reason))
        # else erased meanwhile: the page is one entry shorter, the cursor still right
    return entries
