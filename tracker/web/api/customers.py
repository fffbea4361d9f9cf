"""The support leads' JSON API under /api/v1, behind API keys: customers (the scores are in api_scores)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, current_app, jsonify, request
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from tracker.events import customer_address, iso_from_ms
from tracker.model import ScoreCard
from tracker.privacy.erase import erase_customer
from tracker.privacy.export import export_customer
from tracker.schema_cache import schema
from tracker.scores.cards import card_email, customer_card
from tracker.scores.customer_filters import filtered_card, filtered_customers
from tracker.scores.ranking import ranked_customers
from tracker.scores.summary import customer_responses_page
from tracker.scores.timeline import customer_timeline, decode_cursor, encode_cursor
from tracker.web.api.base import filters_of, load_query, now_ms, require_key, tracker
from tracker.web.api.cases import bp as cases_bp
from tracker.web.api.deliveries import bp as deliveries_bp
from tracker.web.api.openapi import openapi_document
from tracker.web.api.schemas import (
    CardQuerySchema,
    CustomerExportSchema,
    CustomerListQuerySchema,
    CustomerPageSchema,
    ErasureSchema,
    ResponseListQuerySchema,
    ResponsePageSchema,
    TimelineQuerySchema,
    TimelineSchema,
)
from tracker.web.api.scores import bp as scores_bp
from tracker.web.errors import envelope

bp = Blueprint("api", __name__, url_prefix="/api")
bp.register_blueprint(scores_bp)
bp.register_blueprint(deliveries_bp)
bp.register_blueprint(cases_bp)
__all__ = ["bp", "require_key"]


@bp.errorhandler(ValidationError)
def bad_query(exc: ValidationError) -> Any:
    messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
    said = "body" if request.method in ("POST", "PUT", "PATCH") else "query"
    return envelope(422, f"The {said} is not valid.", messages)


@bp.get("/openapi.json")
def openapi() -> Any:
    """Serve the OpenAPI document of the API (open, like the spec says)."""
    return jsonify(openapi_document())


def _unknown_customer() -> Any:
    return envelope(404, "No customer with that email is known.")


@bp.get("/v1/customers")
@require_key()
def customers() -> Any:
    """Return a ranked page of customers' score cards."""
    query = load_query(CustomerListQuerySchema)
    sort = query["sort"] or ("value" if query["at_risk"] else "score")
    order = query["order"] or ("asc" if sort == "score" else "desc")
    app, filters = tracker(), filters_of(query)
    try:
        if filters.chosen():
            cards, cursor = filtered_customers(app.store, app.settings, now_ms(), filters=filters,
                                               at_risk=query["at_risk"], sort=sort, order=order,
                                               limit=query["limit"], cursor=query["cursor"])
        else:
            cards, cursor = ranked_customers(app.store, app.settings, now_ms(), at_risk=query["at_risk"], sort=sort,
                                             order=order, limit=query["limit"], cursor=query["cursor"])
    except ValueError as exc:
        raise ValidationError({"cursor": [str(exc)]}) from exc
    return jsonify(schema(CustomerPageSchema).dump({"customers": cards, "next_cursor": cursor}))


def _card_reads(email: str) -> Callable[[Any], None] | None:
    """Return the reads of the score card a GET of this path shows (read with the key check), None for the
    suffixed paths."""
    if email.endswith(("/responses", "/timeline")):
        return None
    store, wanted = tracker().store, card_email(email)
    return lambda pipe: store.queue_card_parts(pipe, wanted)


def _float(value: float | None) -> float | None:
    return None if value is None else float(value)


def card_json(card: ScoreCard) -> dict[str, Any]:
    """Return a score card as ScoreCardSchema dumps it (SPEC.md §7), the same keys in the same order, built
    directly: the card GET is the API's busiest read, and the schema's generic dump costs more than the rest of
    the view."""
    last, orders = card.last_response, card.orders
    return {
        "score": _float(card.score), "average": _float(card.average), "csat": _float(card.csat),
        "responses": int(card.responses), "surveys_sent": int(card.surveys_sent),
        "response_rate": _float(card.response_rate), "trend": _float(card.trend), "nps": _float(card.nps),
        "customer": str(card.id), "name": None if card.name is None else str(card.name),
        "last_response": None if last is None else {
            "rating": int(last.rating), "scale": str(last.scale), "at": iso_from_ms(int(last.at_ms)),
            "ticket": None if last.ticket is None else str(last.ticket)},
        "orders": None if orders is None else {
            "count": int(orders.count), "total": str(orders.total),
            "currency": None if orders.currency is None else str(orders.currency),
            "totals": {str(code): str(total) for code, total in orders.totals.items()}},
        "at_risk": None if card.at_risk is None else bool(card.at_risk),
    }


@bp.get("/v1/customers/<id:email>")
@require_key(reads=_card_reads)
def customer(email: str, prefetched: list[Any] | None = None) -> Any:
    """Return a customer's score card, narrowed by the filters when given (or, by suffix, their answers or
    timeline)."""
    if email.endswith("/responses"):
        return customer_responses(email.removesuffix("/responses"))
    if email.endswith("/timeline"):
        return timeline(email.removesuffix("/timeline"))
    app = tracker()
    if request.args and (filters := filters_of(load_query(CardQuerySchema))).chosen():  # the hot path reads no schema
        card = filtered_card(app.store, app.settings, email, now_ms(), filters)
    else:
        card = customer_card(app.store, app.settings, email, now_ms(), prefetched)
    if card is None:
        return _unknown_customer()
    return jsonify(card_json(card))


def customer_responses(email: str) -> Any:
    """Return a customer's answers, newest first, a page at a time, narrowed by range and filters."""
    app = tracker()
    query = load_query(ResponseListQuerySchema)
    email = email.strip().lower()
    if app.store.profile(email) is None:
        return _unknown_customer()
    rows, following = customer_responses_page(
        app.store, email, offset=int(query["cursor"] or 0), limit=query["limit"], date_from=query["date_from"],
        date_to=query["date_to"], filters=filters_of(query))
    page = {"customer": email, "responses": rows, "next_cursor": None if following is None else str(following)}
    return jsonify(schema(ResponsePageSchema).dump(page))


def timeline(email: str) -> Any:
    """Return a page of a customer's tickets, orders, surveys (with skip reasons) and answers in time order."""
    app = tracker()
    query = load_query(TimelineQuerySchema)
    email = email.strip().lower()
    if app.store.profile(email) is None:
        return _unknown_customer()
    newest_first = query["order"] == "desc"
    try:
        after = decode_cursor(query["cursor"], newest_first) if query["cursor"] else None
    except ValueError as exc:
        raise ValidationError({"cursor": [str(exc)]}) from exc
    events, following = customer_timeline(app.store, email, query["limit"], newest_first, after)
    page = {"customer": email, "events": events, "next_cursor": encode_cursor(following) if following else None}
    return jsonify(schema(TimelineSchema).dump(page))


@bp.get("/v1/customers/<id:email>/export")
@require_key("admin")
def export(email: str) -> Any:
    """Return everything held about a customer (a data-access request); needs a key with the admin scope."""
    app = tracker()
    found = export_customer(app.store, app.settings, email)
    if found is None:
        return _unknown_customer()
    return jsonify(schema(CustomerExportSchema).dump(found))


@bp.delete("/v1/customers/<id:email>")
@require_key("admin")
def erase(email: str) -> Any:
    """Erase everything about a customer (GDPR); needs a key with the admin scope."""
    app = tracker()
    if customer_address(email) is None:  # nothing is kept under it; the log's sweep would take others' events
        return envelope(404, f"No customer is known by {email[:80]!r}: it is not an email address. Nothing was "
                             "erased.")
    report = erase_customer(app.store, app.settings, email)
    if not report.found:
        return _unknown_customer()
    return jsonify(schema(ErasureSchema).dump(report))


@bp.route("/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
@require_key()
def unknown(rest: str) -> Any:
    """Answer what no endpoint takes, after the key (a caller without one learns nothing of what exists): 405 with
    Allow for an endpoint's path asked with a method it does not take, else 404."""
    allowed = _methods_of(request.path)
    if allowed:
        return envelope(405, f"{request.method} is not allowed here; this endpoint takes {', '.join(allowed)}.",
                        headers={"Allow": ", ".join(allowed)})
    return envelope(404, "No such API endpoint.")


def _methods_of(path: str) -> list[str]:
    """Return the methods an endpoint other than this catch-all takes at path."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    found = []
    for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
        try:
            rule, _ = adapter.match(path, method=method, return_rule=True)
        except HTTPException:
            continue
        if rule.endpoint != request.endpoint:
            found.append(method)
    return found
