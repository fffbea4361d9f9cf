"""Ratings collected elsewhere, from a CSV file, as survey.answered events (SPEC §10).

Columns: `email,rating,scale,answered_at,ticket,source,agent,team,comment` (a header row names them;
order is free; `scale` and `source` may be empty: the configured scale and `import`). Each row is one
event whose id is derived from the row's ticket, time and rating, so importing a file again counts
nothing twice. A row without a ticket gets one named after the customer and the answer's time.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Iterator
from typing import Any

from marshmallow import ValidationError

from tracker.config import Settings
from tracker.events import ANSWERED, parse_event
from tracker.ingest.replay import SOURCE_NAME, ReplayReport
from tracker.model import Event
from tracker.store import Store

COLUMNS = ("email", "rating", "scale", "answered_at", "ticket", "source", "agent", "team", "comment")
REQUIRED = ("email", "rating", "answered_at")
DEFAULT_SOURCE = "import"


class ImportFileError(ValueError):
    """The file as a whole cannot be read as ratings (no header naming the required columns)."""


def rating_events(lines: Iterable[bytes], settings: Settings) -> Iterator[tuple[int, Event | str]]:
    """Yield (line number, event) for each good row and (line number, reason) for each bad one."""
    text, undecodable = _decoded(lines)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = [name.strip().lower() for name in reader.fieldnames or []]
    except csv.Error as exc:
        raise ImportFileError(f"the first line is not a CSV row naming the columns ({exc})") from None
    missing = [name for name in REQUIRED if name not in header]
    unknown = [name for name in header if name not in COLUMNS]
    if missing or unknown or 1 in undecodable:
        raise ImportFileError(f"the first line must name the columns (of {','.join(COLUMNS)}); "
                              + (f"missing {', '.join(missing)}" if missing else
                                 f"unknown {', '.join(unknown)}" if unknown else "it is not UTF-8 text"))
    reader.fieldnames = header
    yield from ((number, "not UTF-8 text; save the file as UTF-8") for number in undecodable)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # a value over the csv module's field limit: the rest of its line is passed over
            yield reader.reader.line_num, f"not a CSV row ({exc})"  # the DictReader's own count is one behind
            continue
        number = reader.line_num
        if None in row:
            yield number, "more values than columns"
            continue
        yield number, _event(row, settings)


def _decoded(lines: Iterable[bytes]) -> tuple[str, list[int]]:
    """Join the file's lines as text; a line that is not UTF-8 is left blank and its number returned."""
    parts, undecodable = [], []
    for number, raw in enumerate(lines, 1):
        try:
            parts.append(raw.decode("utf-8-sig" if number == 1 else "utf-8"))
        except UnicodeDecodeError:
            parts.append("\n")
            undecodable.append(number)
    return "".join(parts), undecodable


def _event(row: dict[str, Any], settings: Settings) -> Event | str:
    """Turn one row into a survey.answered event, or say what is wrong with it."""
    value = {name: (row.get(name) or "").strip() for name in COLUMNS}
    for name in REQUIRED:
        if not value[name]:
            return f"{name} is empty"
    source = value["source"].lower() or DEFAULT_SOURCE
    if not SOURCE_NAME.match(source):
        return f"source {value['source']!r} must be a short name of letters, digits, - and _"
    try:
        rating = int(value["rating"])
    except ValueError:
        return f"rating {value['rating']!r} is not a whole number"
    email = value["email"].lower()
    ticket = value["ticket"] or f"{email}@{value['answered_at']}"
    ident = hashlib.sha256("\x1f".join((source, ticket, value["answered_at"], str(rating))).encode()).hexdigest()
    raw: dict[str, Any] = {
        "type": ANSWERED, "id": f"csv-{ident[:32]}", "occurred_at": value["answered_at"],
        "customer": {"email": email},
        "ticket": {"id": ticket[:200], **({"team": value["team"]} if value["team"] else {}),
                   **({"agent": {"id": value["agent"][:200], "name": value["agent"][:500]}} if value["agent"] else {})},
        "answer": {"rating": rating, "scale": value["scale"].lower() or settings.survey_scale,
                   **({"comment": value["comment"]} if value["comment"] else {})},
    }
    try:
        return parse_event(raw, source)
    except ValidationError as exc:
        return _reason(exc.messages)


def _reason(messages: Any, where: str = "") -> str:
    """Name the first fault of a validation error in the CSV's own words."""
    if isinstance(messages, dict):
        for key, inner in messages.items():
            return _reason(inner, key if key not in ("answer", "ticket", "customer", "agent") else where)
    if isinstance(messages, list) and messages:
        return _reason(messages[0], where)
    column = {"occurred_at": "answered_at", "id": "ticket"}.get(where, where)
    return f"{column}: {messages}" if column else str(messages)


def import_file(store: Store, settings: Settings, lines: Iterable[bytes], dry_run: bool = False) -> ReplayReport:
    """Append each good row's event once (a second import of the file counts nothing), or only count."""
    report = ReplayReport()
    for number, event in rating_events(lines, settings):
        if isinstance(event, str):
            report.errors.append((number, event))
            continue
        delivery = f"import:{event.source}:{event.id}"
        seen = store.delivered(delivery) if dry_run else store.append_delivery(delivery, [event]) < 0
        if seen:
            report.duplicates += 1
            continue
        report.appended += 1
        report.answers += 1
        report.by_type[event.type] += 1
    report.errors.sort()
    return report
