"""POST /webhooks/<source>: verify the raw body, parse it, store it durably, answer."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from types import ModuleType
from typing import Any

import redis
from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.datastructures import EnvironHeaders
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Request

from tracker.config import MAX_BODY
from tracker.errors import StorageUnavailable
from tracker.store.log import kicked_shards
from tracker.web.context import Tracker, current_tracker
from tracker.web.errors import envelope
from webhooks.adapters import ADAPTERS
from webhooks.adapters.base import Delivery, IgnoredEvent, Inbound, PayloadError, SignatureError

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)
TOO_LARGE = "The body is larger than 1 MiB."
APPEND_FAILED = "tracker.append_failed"  # environ key: the error the fast path met appending this delivery


@bp.post("/webhooks/<source>")
def receive(source: str) -> Any:
    """Acknowledge a delivery only once its events are in the event log."""
    tracker = current_tracker()
    adapter, secret = configured(tracker, source)
    if adapter is None or not secret:
        return _counted(source, "unknown_source", envelope(404, "Unknown or unconfigured source."))
    body = _body()
    if body is None:
        return _counted(source, "too_large", envelope(413, TOO_LARGE))
    if not media_accepted(adapter, request.mimetype):
        return _counted(source, "unsupported_media_type",
                        envelope(415, f"The body must be {' or '.join(adapter.CONTENT_TYPES)}."))
    inbound = Inbound(body=body, headers=Headers(request.environ), query=query_of(request.environ),
                      received_at=time.time())
    try:
        adapter.verify(inbound, secret)
    except SignatureError:
        return _counted(source, "unauthorized", envelope(401, "The signature is missing or invalid.",
                                                         headers={"WWW-Authenticate": 'Signature realm="webhooks"'}))
    try:
        delivery = adapter.parse(inbound)
    except IgnoredEvent:
        return _refused(source, inbound, adapter, "ignored", answer(200, status="ignored"))
    except PayloadError as exc:
        return _refused(source, inbound, adapter, "invalid", envelope(exc.status, exc.message, exc.errors or None))
    except (TypeError, AttributeError, KeyError, IndexError, ValueError, ArithmeticError) as exc:
        # Vendor payloads nest loosely typed objects; an odd shape deep inside is the sender's
        # error (422), not ours (500). The payload itself is never logged: it holds personal data.
        log.warning("%s payload of an unexpected shape: %s", source, type(exc).__name__)
        return _refused(source, inbound, adapter, "invalid",
                        envelope(422, "The payload does not have the shape this source sends."))
    failed = request.environ.get(APPEND_FAILED)
    if failed is not None:  # met by webhooks/fast_path.py appending this very delivery: answered, not tried again
        raise failed
    code, fields = store_delivery(tracker, source, delivery)
    return answer(code, **fields)


def configured(tracker: Tracker, source: str) -> tuple[ModuleType | None, str | None]:
    """Return a source's adapter and its secret (None for a source unknown, or without a secret)."""
    return ADAPTERS.get(source), tracker.settings.source_secrets.get(source)


def query_of(environ: dict[str, Any]) -> dict[str, str]:
    """Return a delivery's query parameters as an adapter reads them (`?token=`): the first value of each name, as
    werkzeug decodes them for request.args (the fast path reads them without a Flask request)."""
    return Request(environ, shallow=True).args.to_dict() if environ.get("QUERY_STRING") else {}


def media_accepted(adapter: ModuleType, mimetype: str) -> bool:
    """Say whether an adapter takes a body of this media type (one without CONTENT_TYPES takes any)."""
    return not adapter.CONTENT_TYPES or mimetype in adapter.CONTENT_TYPES


def store_delivery(tracker: Tracker, source: str, delivery: Delivery) -> tuple[int, dict[str, Any]]:
    """Append a verified, parsed delivery to the event log and kick its drains; return the answer's status and
    fields: 202 accepted, or 200 duplicate for a delivery stored before."""
    # A repeat is found by the append itself, in its one round trip, and counted there: accepted or duplicate.
    outcome = tracker.store.append_delivery(delivery.id, delivery.events, source)
    kicked = kicked_shards(outcome)  # the shards appended to whose drain is not already due
    if kicked:
        tracker.kick_drains(kicked)
    if outcome < 0:
        return 200, {"status": "duplicate"}
    return 202, {"status": "accepted", "events": len(delivery.events)}


class Headers(Mapping[str, str]):
    """The request's headers by lower-case name, as a dict of them would hold them, read from the environ when asked.

    What werkzeug's EnvironHeaders reads for a name, without copying every header for the three an adapter reads.
    """

    __slots__ = ("_environ",)

    def __init__(self, environ: dict[str, Any]):
        self._environ = environ

    def __getitem__(self, name: str) -> str:
        key = name.upper().replace("-", "_")
        value = self._environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"]
        return str(value)

    def __iter__(self) -> Iterator[str]:
        return (name.lower() for name, _value in EnvironHeaders(self._environ))

    def __len__(self) -> int:
        return sum(1 for _name in self)


_RENDERED: dict[tuple[Any, ...], str] = {}


def answer(code: int, **payload: Any) -> Response:
    """Return jsonify(payload) with a status; the few bodies the receiver answers with are rendered once per app."""
    app, provider = current_app, current_app.json
    key = (type(provider), app.debug, getattr(provider, "compact", None), getattr(provider, "sort_keys", None),
           getattr(provider, "ensure_ascii", None), *payload.items())
    body = _RENDERED.get(key)
    if body is None:
        body = _RENDERED[key] = jsonify(payload).get_data(as_text=True)
    return app.response_class(body, status=code, mimetype=getattr(provider, "mimetype", "application/json"))


def _body() -> bytes | None:
    """Read the raw body, or return None when it is over the limit."""
    try:
        body = request.get_data(cache=False)
    except RequestEntityTooLarge:  # a declared Content-Length over MAX_CONTENT_LENGTH
        return None
    # A chunked body has no Content-Length; the limited stream stops at the limit without raising.
    return None if len(body) >= MAX_BODY and request.stream.read(1) else body


def _refused(source: str, inbound: Inbound, adapter: Any, outcome: str, refusal: Any) -> Any:
    """Answer a delivery parse() did not accept: a repeat of one accepted before, named in a verified header, is
    a duplicate whatever its body says now (a sender retrying it must stop); anything else gets its refusal.

    A new delivery is not asked about before it is parsed: its append finds a repeat in the same round trip,
    so only the rare body that fails pays the question (README, "Why it is shaped like this"). Asked only once
    the request is verified, so an unsigned one learns nothing about which deliveries were seen.
    """
    early_id = getattr(adapter, "delivery_id", None)
    known = early_id(inbound) if early_id else None
    if known and current_tracker().store.known_delivery(known, source):  # counted as a duplicate by the script
        return answer(200, status="duplicate")
    return _counted(source, outcome, refusal)


def _counted(source: str, outcome: str, answer: Any) -> Any:
    """Count a delivery by source and outcome (one HINCRBY) and return its answer; counting never fails it."""
    try:
        current_tracker().store.count_received(source if source in ADAPTERS else "unknown", outcome)
    except (StorageUnavailable, redis.RedisError):
        pass  # unreachable storage has nowhere to count
    return answer
