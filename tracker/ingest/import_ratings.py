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
import itertools
import re
from collections.abc import Callable, Iterable, Iterator
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
LINE_BREAK = re.compile(r"\r\n|\r|\n")


class ImportFileError(ValueError):
    """The file as a whole cannot be read as ratings (no header naming the required columns)."""


def rating_events(lines: Iterable[bytes], settings: Settings) -> Iterator[tuple[int, Event | str]]:
    """Yield (line number, event) for each good row and (line number, reason) for each bad one."""
    text, undecodable = _decoded(lines)
    rows = list(io.StringIO(text, newline=""))  # the lines as the csv module splits them (CR, LF or CRLF)
    header, start = _header(rows, undecodable)
    yield from ((number, "not UTF-8 text; save the file as UTF-8") for number in undecodable)
    for number, values in _records(rows, start, _row_shaped(header)):
        if isinstance(values, str):
            yield number, values
        elif not values:  # a blank line
            continue
        elif len(values) > len(header):
            yield number, "more values than columns"
        else:
            yield number, _event(dict(zip(header, values, strict=False)), settings)


def _header(rows: list[str], undecodable: list[int]) -> tuple[list[str], int]:
    """Read the header: the column names, and how many lines they took; raise ImportFileError when it names none.

    Encoding comes first: a UTF-16 file (Excel's "Unicode text") has no UTF-8 first line, and saying so beats
    calling every column missing. Its little-endian form without a byte-order mark decodes as UTF-8 with a NUL
    after each character, which no column name holds.
    """
    if 1 in undecodable or (rows and "\x00" in rows[0]):
        raise ImportFileError(f"the first line must name the columns (of {','.join(COLUMNS)}); it is not UTF-8 "
                              "text: save the file as UTF-8")
    reader = csv.reader(iter(rows), strict=True)
    try:
        header = [name.strip().lower() for name in next(reader, [])]
    except csv.Error as exc:
        raise ImportFileError(f"the first line is not a CSV row naming the columns ({exc})") from None
    missing = [name for name in REQUIRED if name not in header]
    unknown = [name for name in header if name not in COLUMNS]
    if missing or unknown:
        raise ImportFileError(f"the first line must name the columns (of {','.join(COLUMNS)}); "
                              + (f"missing {', '.join(missing)}" if missing else f"unknown {', '.join(unknown)}"))
    return header, reader.line_num


def _records(rows: list[str], start: int, row_shaped: Callable[[str], bool]) -> Iterator[tuple[int, list[str] | str]]:
    """Yield (line number, values) for each CSV record after the first start lines, (line number, reason) for each
    that cannot be read.

    A quote opened and never closed would otherwise make the rest of the file one value: every later row gone into
    a comment, without a word. So the reading is strict (a quote left open at the end is an error), and a record
    that fails over several lines, or whose quoted value runs over lines shaped like rows of their own, is reported
    at the line it starts on and the reading starts again on the line after it: the rows it took along are read as
    rows (one bad row never takes others with it). A record failing within its one line (a value over the csv
    module's limit) is reported at that line and the reading goes on after it, as the csv module does.
    """
    while True:
        reader = csv.reader(itertools.islice(rows, start, None), strict=True)
        read = 0  # the lines the records so far took
        while True:
            first = start + read + 1  # the line the next record starts on
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                if start + reader.line_num > first:
                    yield first, (f"a quote opened on this line is not closed properly ({exc}); the lines after "
                                  "it are read as rows of their own")
                    break
                read = reader.line_num
                yield start + read, f"not a CSV row ({exc})"
                continue
            read = reader.line_num
            if start + read > first and any(row_shaped(line) for line in _continued(values)):
                yield first, ("a quote opened on this line runs over lines that look like rows of their own; it is "
                              "not closed where it should be, and those lines are read as rows")
                break
            yield start + read, values
        start = first  # again from the line after the one the bad record starts on


def _continued(values: list[str]) -> Iterator[str]:
    """Yield every line of the record's values after a line break: the lines a quoted value ran over."""
    for value in values:
        yield from LINE_BREAK.split(value)[1:]


def _row_shaped(header: list[str]) -> Callable[[str], bool]:
    """Say whether a line, read alone, is a row of this file: no more values than columns, and the required ones
    set, with an address in email. A comment that spans lines holds no such line; a swallowed row does."""
    columns = [header.index(name) for name in REQUIRED]
    email = header.index("email")

    def shaped(line: str) -> bool:
        try:
            values = next(csv.reader([line]), [])
        except csv.Error:
            return False
        return (max(columns) < len(values) <= len(header) and all(values[index].strip() for index in columns)
                and "@" in values[email])

    return shaped


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
    email = value["email"].lower()  # the default ticket and the id (so a file imported again counts nothing twice)
    ticket = value["ticket"] or f"{email}@{value['answered_at']}"
    ident = hashlib.sha256("\x1f".join((source, ticket, value["answered_at"], str(rating))).encode()).hexdigest()
    raw: dict[str, Any] = {
        "type": ANSWERED, "id": f"csv-{ident[:32]}", "occurred_at": value["answered_at"],
        "customer": {"email": value["email"]},  # checked as written, then folded, as from every source
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
