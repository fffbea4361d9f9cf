"""The dashboard's recovery cases: a list (overdue first, filters) and a case page (notes, status, the timeline)."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from marshmallow import EXCLUDE, Schema, ValidationError, fields, pre_load, validate

from tracker.cases.schemas import CURSOR_PATTERN, NOTE_MAX, OUTCOME_MAX, OWNER_MAX, UNASSIGNED
from tracker.cases.work import TRANSITIONS, CaseNotFound, InvalidChange, update_case
from tracker.model import CASE_STATUSES, Case
from tracker.schema_cache import schema
from tracker.scores.cards import customer_card
from tracker.scores.timeline import customer_timeline
from tracker.store.cases import UNASSIGNED as STORE_UNASSIGNED
from tracker.web.context import current_tracker
from tracker.web.dashboard.views import _csrf_ok, _refused, csrf_token, may_change, no_store, signed_in

bp = Blueprint("dashboard_cases", __name__, url_prefix="/dashboard/cases")
PAGE_ROWS = 50
TIMELINE_ROWS = 50
READ_ONLY = ("You signed in with a read-only API key: it reads cases but cannot change them. Sign in with a key "
             "that holds the admin scope to work this case.")


class CaseFiltersSchema(Schema):
    """The case list's filters as the page's form sends them (empty fields mean "all")."""

    class Meta:
        unknown = EXCLUDE

    status = fields.String(load_default=None, validate=validate.OneOf(CASE_STATUSES))
    owner = fields.String(load_default=None, validate=validate.Length(max=OWNER_MAX))
    overdue = fields.Boolean(load_default=False)
    cursor = fields.String(load_default=None, validate=validate.Regexp(CURSOR_PATTERN, error="Not a valid cursor."))

    @pre_load
    def drop_empty(self, data: Any, **kwargs: Any) -> dict[str, Any]:
        return {k: v.strip() for k, v in data.items() if isinstance(v, str) and v.strip()}


class CaseFormSchema(Schema):
    """The case page's form: a note, a status, an owner and an outcome (each optional), and its CSRF token."""

    class Meta:
        unknown = EXCLUDE

    csrf_token = fields.String(required=True)
    status = fields.String(load_default=None, validate=validate.OneOf(CASE_STATUSES))
    note = fields.String(load_default="", validate=validate.Length(max=NOTE_MAX))
    owner = fields.String(load_default=None, validate=validate.Length(max=OWNER_MAX))
    outcome = fields.String(load_default=None, validate=validate.Length(max=OUTCOME_MAX))

    @pre_load
    def fold_line_breaks(self, data: Any, **kwargs: Any) -> dict[str, Any]:
        return {k: v.replace("\r\n", "\n").strip() for k, v in data.items() if isinstance(v, str)}


bp.after_request(no_store)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _messages(exc: ValidationError) -> list[str]:
    raw = exc.messages if isinstance(exc.messages, dict) else {"form": exc.messages}
    return [f"{name}: {message}" for name, messages in raw.items()
            for message in (messages if isinstance(messages, list) else [messages])]


@bp.get("/")
@bp.get("")
def cases() -> Any:
    """List cases: open and contacted ones first, soonest due (so overdue) first, then closed ones."""
    user = signed_in()
    if user is None:
        return redirect(url_for("dashboard.login_form"))
    tracker, now = current_tracker(), _now_ms()
    errors: list[str] = []
    try:
        query = schema(CaseFiltersSchema).load(request.args)
    except ValidationError as exc:
        errors = _messages(exc)
        query = {"status": None, "owner": None, "overdue": False, "cursor": None}
    owner = STORE_UNASSIGNED if query["owner"] == UNASSIGNED else query["owner"]
    found, following = tracker.store.case_page(owner, query["status"], now if query["overdue"] else None,
                                               PAGE_ROWS, query["cursor"])
    return render_template("dashboard/cases.html", user=user, csrf_token=csrf_token(), cases=found, query=query,
                           following=following, errors=errors, now_ms=now, statuses=CASE_STATUSES,
                           unassigned=UNASSIGNED), 400 if errors else 200


def _case_page(user: str, case: Case, errors: list[str] | None = None, status: int = 200) -> tuple[str, int]:
    tracker, now = current_tracker(), _now_ms()
    card = customer_card(tracker.store, tracker.settings, case.customer, now)
    timeline, _ = customer_timeline(tracker.store, case.customer, TIMELINE_ROWS, newest_first=True)
    return render_template("dashboard/case.html", user=user, csrf_token=csrf_token(), case=case, card=card,
                           timeline=timeline, now_ms=now, errors=errors or [], may_change=may_change(),
                           next_statuses=sorted(TRANSITIONS.get(case.status, ()))), status


@bp.get("/<case_id>")
def case_page(case_id: str) -> Any:
    """Show one case: its answer, owner, due time, notes, and the customer's card and timeline."""
    user = signed_in()
    if user is None:
        return redirect(url_for("dashboard.login_form"))
    found = current_tracker().store.case(case_id)
    if found is None:
        return render_template("dashboard/message.html", user=user, csrf_token=csrf_token(), title="No such case",
                               text="No case has that id."), 404
    return _case_page(user, found)


@bp.post("/<case_id>")
def work_case(case_id: str) -> Any:
    """Apply the case form: add the note, move the status, set the owner and outcome; then show the case again."""
    user = signed_in()
    if user is None:
        return redirect(url_for("dashboard.login_form"))
    if not _csrf_ok():
        return _refused()
    tracker = current_tracker()
    found = tracker.store.case(case_id)
    if found is None:
        return render_template("dashboard/message.html", user=user, csrf_token=csrf_token(), title="No such case",
                               text="No case has that id."), 404
    if not may_change():
        return _case_page(user, found, [READ_ONLY], 403)
    try:
        form = schema(CaseFormSchema).load(request.form)
    except ValidationError as exc:
        return _case_page(user, found, _messages(exc), 400)
    change: dict[str, Any] = {"note": form["note"] or None}
    if form["status"] and form["status"] != found.status:
        change["status"] = form["status"]
    if form["owner"] is not None and (form["owner"] or None) != found.owner:
        change["owner"] = form["owner"]
    if form["outcome"] is not None and (form["outcome"] or None) != found.outcome:
        change["outcome"] = form["outcome"]
    try:
        update_case(tracker.store, tracker.settings, case_id, _now_ms(), f"dashboard:{user}", **change)
    except CaseNotFound:
        return redirect(url_for(".cases"), 303)
    except InvalidChange as exc:
        return _case_page(user, found, [str(exc)], 400)
    return redirect(url_for(".case_page", case_id=case_id), 303)
