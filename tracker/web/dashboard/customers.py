"""The dashboard's customer page: score card, recovery cases and timeline of one customer.

Write-back notes and alerts link here (tracker.writeback.base.DASHBOARD_CUSTOMER_PATH names the path).
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, redirect, render_template, url_for
from marshmallow import Schema, ValidationError, validate

from tracker.events import CustomerEmail
from tracker.model import CASE_ACTIVE, Answer
from tracker.schema_cache import schema
from tracker.scores.cards import customer_card
from tracker.scores.summary import Facets, customer_responses_page
from tracker.scores.timeline import customer_timeline
from tracker.web.context import current_tracker
from tracker.web.dashboard.views import csrf_token, message_page, no_store, signed_in

bp = Blueprint("dashboard_customers", __name__, url_prefix="/dashboard/customers")
TIMELINE_ROWS = 100
ANSWER_ROWS = 50


class CustomerPathSchema(Schema):
    """The customer's address as the path names it."""

    email = CustomerEmail(required=True, validate=validate.Length(max=320))


bp.after_request(no_store)


def extra_answers(answer: Answer) -> list[tuple[str, str]]:
    """Return (question, answer) of an answer's extra answers, each question as the surveys file words it in
    English for the answer's brand and source (its id when the file no longer asks it)."""
    if not answer.extra:
        return []
    surveys = current_tracker().settings.surveys
    picked = surveys.pick(answer.brand, answer.source, "en") if surveys else None
    asked = {q.id: q.question for q in picked.extra_questions} if picked else {}
    return [(asked.get(qid, qid), value) for qid, value in answer.extra.items()]


@bp.get("/<id:email>")
def customer_page(email: str) -> Any:
    """Show one customer: the score card, their recovery cases, and their timeline (newest first)."""
    user = signed_in()
    if user is None:
        return redirect(url_for("dashboard.login_form"))
    try:
        address = schema(CustomerPathSchema).load({"email": email})["email"]
    except ValidationError:
        return message_page(user, "Not an email address", "A customer page is named by the customer's email address.",
                        400)
    tracker, now = current_tracker(), int(time.time() * 1000)
    card = customer_card(tracker.store, tracker.settings, address, now)
    if card is None:
        return message_page(user, "No such customer", "No customer has that email address.", 404)
    timeline, _ = customer_timeline(tracker.store, address, TIMELINE_ROWS, newest_first=True)
    answers, more = customer_responses_page(tracker.store, address, offset=0, limit=ANSWER_ROWS, date_from=None,
                                            date_to=None, filters=Facets())
    cases = tracker.store.cases_of(address)
    return render_template("dashboard/customer.html", user=user, csrf_token=csrf_token(), card=card,
                           cases=cases, open_cases=[case for case in cases if case.status in CASE_ACTIVE],
                           timeline=timeline, now_ms=now, answers=answers, more_answers=more is not None,
                           orders=sorted(tracker.store.customer_orders(address),
                                         key=lambda order: -(order.created_at_ms or 0)),
                           csv_url=url_for("dashboard_drill.export_csv", customer=address),
                           customer_heading="Score and timeline", extra_answers=extra_answers)
