"""Re-ingest standard events from a JSON-lines file into the event log."""

from __future__ import annotations

import json
from typing import IO

from marshmallow import ValidationError

from tracker.events import parse_event
from tracker.store import Store


def replay_file(store: Store, lines: IO[str], source: str) -> tuple[int, int, list[tuple[int, str]]]:
    """Append each valid line once (deduplicated by source and event id); return counts and errors."""
    appended = duplicates = 0
    errors: list[tuple[int, str]] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            event = parse_event(json.loads(line), source)
        except ValueError:
            errors.append((number, "not valid JSON"))
            continue
        except ValidationError as exc:
            errors.append((number, f"not a valid event: {json.dumps(exc.messages, sort_keys=True)}"))
            continue
        if store.append_delivery(f"replay:{source}:{event.id}", [event]) < 0:
            duplicates += 1
        else:
            appended += 1
    return appended, duplicates, errors
