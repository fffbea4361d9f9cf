"""The notices the product emits: their types, their shape, and emit, which appends one exactly once.

A notice is emitted where what it tells became true, by code that may run again after a crash (an outbox
entry forwarded again, a log entry applied again): its id is derived from what it tells (for example
"survey.answered:<bucket>:<outbox seq>"), so emitting it again appends nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tracker.notice_types import TYPES
from tracker.store import Store


@dataclass(frozen=True)
class Notice:
    """One notice as its targets get it: id (stable for good: the webhook-id), type, customer, time, data."""

    id: str
    type: str
    customer: str
    at_ms: int
    data: dict[str, Any] = field(default_factory=dict)
    entry: str = ""  # its stream entry id ("" before it is appended)

    def body(self) -> dict[str, Any]:
        """Return the notice as event URLs receive it: {"type", "timestamp", "data"} (Standard Webhooks)."""
        from datetime import UTC, datetime

        stamp = datetime.fromtimestamp(self.at_ms / 1000, UTC).isoformat(timespec="milliseconds")
        return {"type": self.type, "timestamp": stamp.replace("+00:00", "Z"), "data": self.data}


def emit(store: Store, type_: str, customer: str, data: dict[str, Any], event_id: str, at_ms: int) -> bool:
    """Append a notice to its customer's bucket stream once (by event_id); say whether it was appended now.

    `data` must be JSON-serialisable; it should name the customer (`customer.email`) like every event does.
    """
    if type_ not in TYPES:
        raise ValueError(f"unknown notice type {type_!r}")
    if not customer or not event_id:
        raise ValueError("a notice needs a customer and an id")
    body = json.dumps(data, separators=(",", ":"), sort_keys=True)
    return store.append_notice(event_id, type_, customer, int(at_ms), body) is not None


def notice_from_entry(entry_id: str, fields: dict[str, str]) -> Notice:
    """Read a notice back from its stream entry."""
    return Notice(id=fields["id"], type=fields["type"], customer=fields["customer"], at_ms=int(fields["at"]),
                  data=json.loads(fields.get("data") or "{}"), entry=entry_id)
