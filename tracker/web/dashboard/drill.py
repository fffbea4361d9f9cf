"""The dashboard's drill-down routes: customer search (header box) and the session-authenticated CSV downloads.

`/dashboard/export.csv` streams every answer of the page's range and filters with the columns of
`/api/v1/export/responses.csv` (its code); `?customer=<email>` narrows it to one customer's answers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import chain
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, redirect, render_template, request, stream_with_context, url_for
from marshmallow import EXCLUDE, Schema, ValidationError, fields, pre_load, validate

from tracker.events import CustomerEmail
from tracker.model import Answer
from tracker.schema_cache import schema
from tracker.scores.cards import customer_card
from tracker.scores.summary import customer_responses_page, iter_responses
from tracker.web.api.schemas import ResponseSchema
from tracker.web.api.scores import CSV_COLUMNS, csv_line
from tracker.web.api.scores import _csv_cells as csv_cells
from tracker.web.context import current_tracker
from tracker.web.dashboard.data import known_ids, load_query, reason_label
from tracker.web.dashboard.views import csrf_token, message_page, no_store, signed_in

bp = Blueprint("dashboard_drill", __name__, url_prefix="/dashboard")
SEARCH_ROWS = 20
CUSTOMER_CSV_BATCH = 200
bp.add_app_template_filter(reason_label, "reason_label")


class SearchQuerySchema(Schema):
    """The header's search box: part of an email address or the start of a name."""

    class Meta:
        unknown = EXCLUDE

    q = fields.String(load_default="", validate=validate.Length(max=200))

    @pre_load
    def strip(self, data: Any, **kwargs: Any) -> dict[str, Any]:
        return {k: v.strip() for k, v in data.items() if isinstance(v, str)}


class CustomerQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    customer = CustomerEmail(load_default=None, validate=validate.Length(max=320))


bp.after_request(no_store)


@bp.get("/search")
def search() -> Any:
    """Find customers by email prefix and by name prefix (each a bounded ZRANGEBYLEX); one exact hit opens it."""
    user = signed_in()
    if user is None:
        return redirect(url_for("dashboard.login_form"))
    try:
        q = schema(SearchQuerySchema).load(request.args)["q"]
    except ValidationError:
        return message_page(user, "Search too long", "Search with at most 200 characters.", 400)
    store, now = current_tracker().store, int(time.time() * 1000)
    rows: list[tuple[str, str | None]] = []
    if q:
        by_email = store.find_by_email(q, SEARCH_ROWS)
        by_name = store.find_by_name(q, SEARCH_ROWS)
        if by_email == [q.lower()] and not by_name:
            return redirect(url_for("dashboard_customers.customer_page", email=by_email[0]))
        seen: set[str] = set()
        for email in [*by_email, *(email for email, _ in by_name)]:
            if email not in seen:
                seen.add(email)
                rows.append((email, None))
    settings = current_tracker().settings
    cards = [card for email, _ in rows[:SEARCH_ROWS]
             if (card := customer_card(store, settings, email, now)) is not None]
    return render_template("dashboard/search.html", user=user, csrf_token=csrf_token(), q=q, cards=cards,
                           limit=SEARCH_ROWS)


@bp.get("/export.csv")
def export_csv() -> Any:
    """Stream the answers of the page's range and filters (or one customer's, all time) as the API's CSV."""
    user = signed_in()
    if user is None:
        return redirect(url_for("dashboard.login_form"), 303)
    tracker = current_tracker()
    today = datetime.now(UTC).date()
    try:
        customer = schema(CustomerQuerySchema).load(request.args)["customer"]
        query = None if customer else load_query(request.args, known_ids(tracker.store), today,
                                                         tracker.store)
    except ValidationError:
        return message_page(user, "Cannot export", "The filters or the customer's address are not valid; "
                                               "open the dashboard and use its CSV button.", 400)
    answers: Iterator[Answer]
    if customer:
        customer = customer.lower()
        answers = _customer_answers(customer)
        name = f"responses-{customer}.csv"
    else:
        assert query is not None
        answers = iter_responses(tracker.store, date_from=query.date_from, date_to=query.date_to,
                                 filters=query.facets)
        name = f"responses-{query.date_from}-{query.date_to}.csv"
    first = next(answers, None)  # read before answering so an unreachable store still gets its 503
    rows = schema(ResponseSchema)

    def lines() -> Iterator[str]:
        yield csv_line(CSV_COLUMNS)
        for answer in chain([first] if first else [], answers):
            yield csv_line(csv_cells(rows.dump(answer)))

    return Response(stream_with_context(lines()), mimetype="text/csv",
                    headers={"Content-Disposition": attachment(name)})


def attachment(name: str) -> str:
    """Content-Disposition of a download: an ASCII filename every client reads (a header's bytes are Latin-1, and
    an address may be in any script: иван@пример.рф), and the name itself as RFC 6266's filename* where it differs."""
    plain = "".join(c if (c.isascii() and c.isalnum()) or c in "-_.@" else "_" for c in name)
    return f'attachment; filename="{plain}"' + ("" if plain == name else f"; filename*=UTF-8''{quote(name, safe='')}")


def _customer_answers(email: str) -> Iterator[Answer]:
    """Yield one customer's answers, newest first, a page at a time."""
    from tracker.scores.summary import Facets

    store, offset = current_tracker().store, 0
    while True:
        page, following = customer_responses_page(store, email, offset=offset, limit=CUSTOMER_CSV_BATCH,
                                                  date_from=None, date_to=None, filters=Facets())
        yield from page
        if following is None:
            return
        offset = following
