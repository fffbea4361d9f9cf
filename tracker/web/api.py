"""The support leads' JSON API under /api/v1, behind API keys."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request
from marshmallow import ValidationError

from tracker.cards import customer_card, response_row
from tracker.timeline import customer_timeline
from tracker.web.errors import envelope
from tracker.web.schemas import (
    ListQuerySchema,
    ResponsePageSchema,
    ScoreCardSchema,
    TimelineQuerySchema,
    TimelineSchema,
)

bp = Blueprint("api", __name__, url_prefix="/api")


def _now_ms() -> int:
    return int(time.time() * 1000)


def require_key(scope: str = "read") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Let a request through only with `Authorization: Bearer <key>` of a key holding scope."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            scheme, _, key = request.headers.get("Authorization", "").partition(" ")
            found = None
            if scheme.lower() == "bearer" and key.strip():
                found = current_app.extensions["tracker"].store.check_key(key.strip())
            if found is None:
                return envelope(401, "A valid API key is required: Authorization: Bearer <key>.",
                                headers={"WWW-Authenticate": 'Bearer realm="tracker"'})
            if scope not in found[1]:
                return envelope(403, f"This API key lacks the {scope!r} scope.")
            g.api_key = found[0]
            return view(*args, **kwargs)

        return guarded

    return decorate


def _query(schema: type) -> dict[str, Any]:
    return schema().load(request.args)


@bp.errorhandler(ValidationError)
def bad_query(exc: ValidationError) -> Any:
    messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
    return envelope(422, "The query is not valid.", messages)


@bp.get("/v1/customers/<path:email>")
@require_key()
def customer(email: str) -> Any:
    """Return a customer's score card."""
    tracker = current_app.extensions["tracker"]
    if email.endswith("/responses"):
        return customer_responses(email.removesuffix("/responses"))
    if email.endswith("/timeline"):
        return timeline(email.removesuffix("/timeline"))
    card = customer_card(tracker.store, tracker.settings, email, _now_ms())
    if card is None:
        return envelope(404, "No customer with that email is known.")
    return jsonify(ScoreCardSchema().dump(card))


def customer_responses(email: str) -> Any:
    """Return a customer's answers, newest first, a page at a time."""
    tracker = current_app.extensions["tracker"]
    query = _query(ListQuerySchema)
    email = email.strip().lower()
    if not tracker.store.profile(email):
        return envelope(404, "No customer with that email is known.")
    offset = int(query["cursor"] or 0)
    rows = tracker.store.customer_responses(email, offset, query["limit"] + 1)
    more = len(rows) > query["limit"]
    page = {"customer": email, "responses": [response_row(r) for r in rows[:query["limit"]]],
            "next_cursor": str(offset + query["limit"]) if more else None}
    return jsonify(ResponsePageSchema().dump(page))


def timeline(email: str) -> Any:
    """Return a customer's tickets, orders, surveys (with skip reasons) and answers in time order."""
    tracker = current_app.extensions["tracker"]
    query = _query(TimelineQuerySchema)
    email = email.strip().lower()
    if not tracker.store.profile(email):
        return envelope(404, "No customer with that email is known.")
    events = customer_timeline(tracker.store, email, query["limit"], query["order"] == "desc")
    return jsonify(TimelineSchema().dump({"customer": email, "events": events}))


@bp.route("/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
@require_key()
def unknown(rest: str) -> Any:
    return envelope(404, "No such API endpoint.")
