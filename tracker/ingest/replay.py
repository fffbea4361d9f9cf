"""Re-ingest standard events (and survey events) from a JSON-lines file into the event log, or say what would change.

Each line is one standard event (SPEC §4, §10). A line may name its own `source` (export-log writes it,
so every event keeps the source it came from); otherwise the replay's source applies. Bad lines are
reported with their number and never block the others.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from marshmallow import ValidationError

from tracker import text as jsontext
from tracker.config import Settings
from tracker.events import ANSWERED, parse_event
from tracker.model import Event
from tracker.store import Store
from tracker.surveys.policy import stale_before

RESOLVED = ("ticket.solved", "ticket.closed")
# A line's own source may be any such name: export-log writes the sources of imported ratings too.
SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


@dataclass
class ReplayReport:
    """What a replay appended (or, dry, would append), and what its solves and answers do."""

    appended: int = 0
    duplicates: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    surveys_scheduled: int = 0  # solves whose survey is still to come
    surveys_too_old: int = 0  # solves whose survey would already have expired: skipped, never mailed
    answers: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)


def delivery_id(event: Event) -> str:
    """Name a replayed event's delivery, so replaying a file twice appends it once."""
    return f"replay:{event.source}:{event.id}"


def replay_file(store: Store, settings: Settings, lines: Iterable[bytes], source: str,
                known_sources: Collection[str], dry_run: bool = False, now_ms: int | None = None) -> ReplayReport:
    """Append each valid line once (deduplicated by source and event id), or only count when dry_run."""
    report = ReplayReport()
    stale = stale_before(settings, int(time.time() * 1000) if now_ms is None else now_ms)
    for number, raw in enumerate(lines, 1):
        event = _event(raw, source, known_sources, number, report)
        if event is None:
            continue
        if dry_run:
            seen = store.delivered(delivery_id(event))
        else:
            seen = store.append_delivery(delivery_id(event), [event]) < 0
        if seen:
            report.duplicates += 1
            continue
        report.appended += 1
        report.by_type[event.type] += 1
        report.answers += event.type == ANSWERED
        if _surveyable(event, settings):
            if event.at_ms + _delay_ms(event, settings) < stale:
                report.surveys_too_old += 1
            else:
                report.surveys_scheduled += 1
    return report


def _event(raw: bytes, source: str, known_sources: Collection[str], number: int,
           report: ReplayReport) -> Event | None:
    """Read one line into an event, or note why it cannot be one."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        report.errors.append((number, f"not UTF-8 text (byte {exc.start + 1} of the line)"))
        return None
    if not text.strip():
        return None
    try:
        data = jsontext.loads(text)
    except json.JSONDecodeError as exc:
        report.errors.append((number, f"not valid JSON ({exc.msg} at column {exc.colno})"))
        return None
    except (ValueError, RecursionError):
        report.errors.append((number, "not valid JSON (nested too deeply)"))
        return None
    if not isinstance(data, dict):
        report.errors.append((number, "not a JSON object"))
        return None
    line_source = data.pop("source", source)
    if line_source not in known_sources and not (isinstance(line_source, str) and SOURCE_NAME.match(line_source)):
        report.errors.append((number, f"source {line_source!r} is not a source name; known: "
                                      f"{', '.join(sorted(known_sources))}"))
        return None
    try:
        return parse_event(data, line_source)
    except ValidationError as exc:
        report.errors.append((number, f"not a valid event: {json.dumps(exc.messages, sort_keys=True)}"))
        return None


def _surveyable(event: Event, settings: Settings) -> bool:
    """Say whether an event makes a survey due: a solve, or a fulfilment when orders are surveyed."""
    return event.type in RESOLVED or (event.type == "order.fulfilled" and settings.order_survey_delay is not None)


def _delay_ms(event: Event, settings: Settings) -> int:
    return ((settings.order_survey_delay or 0) if event.order else settings.survey_delay) * 1000
