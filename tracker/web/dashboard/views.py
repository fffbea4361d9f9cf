"""The support leads' dashboard at /dashboard: a login with an API key and one server-rendered page of scores."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, Response, redirect, render_template, request, session, url_for
from flask.blueprints import BlueprintSetupState
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from tracker.events import iso_from_ms
from tracker.schema_cache import schema
from tracker.scores.cards import public_ref
from tracker.scores.summary import day_of_ms
from tracker.surveys.tokens import derive_key
from tracker.web.clients import limited_as
from tracker.web.context import Tracker, current_tracker
from tracker.web.dashboard import cells
from tracker.web.dashboard.data import (
    COMMENT_SCAN,
    DashboardQuery,
    collect,
    default_query,
    known_ids,
    load_query,
    presets,
)

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")
SESSION_HOURS = 12
SIGN_IN_WINDOW_S = 15 * 60  # TRACKER_SIGN_IN_FAILURES failed sign-ins from one client are allowed in this window


class LoginFormSchema(Schema):
    """The login form: an API key and the form's CSRF token."""

    class Meta:
        unknown = EXCLUDE

    key = fields.String(required=True, validate=validate.Length(min=1, max=200))
    csrf_token = fields.String(required=True, validate=validate.Length(max=200))


@bp.record_once
def _cookie_settings(state: BlueprintSetupState) -> None:
    # Only the dashboard uses Flask's session, so its cookie is scoped to /dashboard.
    settings = state.app.extensions["tracker"].settings
    state.app.config.update(
        SESSION_COOKIE_NAME="tracker_dashboard", SESSION_COOKIE_PATH="/dashboard", SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_SECURE=settings.public_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS))


@bp.app_template_filter("iso_time")
def _iso_time(ms: int) -> str:
    return iso_from_ms(ms)


bp.add_app_template_filter(public_ref, "public_ref")
bp.add_app_template_global(cells.num, "num")
bp.add_app_template_global(cells.trend, "trend")
bp.add_app_template_global(cells.score_cells, "score_cells")
bp.add_app_template_global(cells.spark, "spark")


def no_store(response: Response) -> Response:
    """Mark a dashboard answer uncacheable (every dashboard blueprint runs it after each request): the app sets
    the security headers of every page; scores and customers are not for shared caches or the back button."""
    response.headers["Cache-Control"] = "no-store"
    return response


bp.after_request(no_store)


def message_page(user: str, title: str, text: str, status: int) -> tuple[str, int]:
    """Render the dashboard's one-message page (a bad address, a missing customer or case) with its status."""
    return render_template("dashboard/message.html", user=user, csrf_token=csrf_token(), title=title,
                           text=text), status


def _tracker() -> Tracker:
    return current_tracker()


def _csrf_digest(nonce: str, secret: str) -> str:
    key = derive_key(secret, "csrf")
    return hmac.new(key, nonce.encode("ascii"), hashlib.sha256).hexdigest()


def csrf_token() -> str:
    """Return this session's CSRF token, starting a session for it when there is none."""
    if not session.get("csrf"):
        session["csrf"] = secrets.token_urlsafe(16)
    return _csrf_digest(session["csrf"], _tracker().settings.secret_key)


def _csrf_ok() -> bool:
    """Say whether the form carries this session's token, made with the secret key or an earlier one still accepted
    (a form rendered before the key changed)."""
    sent, nonce = request.form.get("csrf_token", ""), session.get("csrf")
    if not isinstance(nonce, str) or not nonce:
        return False
    sent_bytes = sent.encode("utf-8", "replace")
    return any(hmac.compare_digest(sent_bytes, _csrf_digest(nonce, key).encode())
               for key in _tracker().settings.secret_keys)


def _refused() -> tuple[str, int]:
    return render_template("dashboard/message.html", title="This form has expired",
                           text="The form was not sent from this dashboard or its session ended. "
                                "Open the login page again and retry.", csrf_token=csrf_token()), 400


def signed_in() -> str | None:
    """Return the name of the key this person signed in with, while the session and that key still exist."""
    name, session_id = session.get("key_name"), session.get("session_id")
    if not name:
        return None
    if not isinstance(session_id, str) or not isinstance(name, str):
        session.clear()
        return None
    signed, created = _tracker().store.session_sign_in(session_id, name)
    # Signing out deletes the server-side session, so a copied cookie stops working with it.
    if signed != name:
        session.clear()
        return None
    # A revoked key ends the session; a new key under the old name has a new creation time.
    if created is None or created != session.get("key_created"):
        session.clear()
        session["notice"] = "Your session ended because its API key was revoked. Sign in with a current key."
        return None
    return str(name)


def may_change() -> bool:
    """Say whether the signed-in key may change what the dashboard shows (work a case): it holds the admin scope,
    as the API's PATCH asks. A read-only key (tracker api-key create --scope read) reads everything and changes
    nothing."""
    admin = session.get("key_admin")
    if not isinstance(admin, bool):  # a session begun before sign-in kept it: ask the key once
        name = session.get("key_name")
        admin = any(row["name"] == name and isinstance(scopes := row["scopes"], list) and "admin" in scopes
                    for row in _tracker().store.list_keys())
        session["key_admin"] = admin
    return admin


def _login_page(error: str | None = None, status: int = 200) -> tuple[str, int]:
    notice = session.pop("notice", None)
    return render_template("dashboard/login.html", error=error, notice=notice, csrf_token=csrf_token()), status


def _too_many_failures(left_ms: int) -> tuple[str, int, dict[str, str]]:
    minutes = max(1, -(-left_ms // 60_000))
    page, status = _login_page(f"Too many sign-ins with a key that is not valid came from your address. Try again "
                               f"in {minutes} minute{'s' if minutes != 1 else ''}.", 429)
    return page, status, {"Retry-After": str(max(1, -(-left_ms // 1000)))}


@bp.get("/login")
def login_form() -> Any:
    """Show the login form, or the dashboard to someone already signed in."""
    if signed_in():
        return redirect(url_for(".index"))
    return _login_page()


@bp.post("/login")
def login() -> Any:
    """Sign a person in with an API key; the session keeps the key's name, never the key."""
    if not _csrf_ok():
        return _refused()
    try:
        form = schema(LoginFormSchema).load(request.form)
    except ValidationError:
        return _login_page("Enter an API key.", 401)
    if not form["key"].strip():  # blanks: no key was tried
        return _login_page("Enter an API key.", 401)
    store, limit = _tracker().store, _tracker().settings.sign_in_failures
    client = limited_as(request.remote_addr or "")
    if limit:
        # Counted per client and checked before the key, so guessing stops at the limit (a key is 256 random
        # bits, so this spares the store more than it guards the keys); a proxy's clients are told apart only
        # when FORWARDED_ALLOW_IPS trusts it (tracker.web.clients).
        failed, left_ms = store.sign_in_failures(client)
        if failed >= limit:
            return _too_many_failures(left_ms)
    found = store.check_key(form["key"].strip())
    if found is None or "read" not in found[1]:
        if limit:
            failed, left_ms = store.note_sign_in_failure(client, SIGN_IN_WINDOW_S * 1000)
            if failed > limit:  # others from this client raced this one past it
                return _too_many_failures(left_ms)
        return _login_page("That API key is not valid.", 401)
    created = next((row["created_at"] for row in store.list_keys() if row["name"] == found[0]), None)
    session.clear()  # a fresh session (and CSRF nonce) on every sign-in
    session.permanent = True
    session_id = secrets.token_urlsafe(32)
    store.start_session(session_id, found[0], SESSION_HOURS * 3600)
    # A key's scopes never change while it exists (a revoked key ends the session): kept for the forms that change.
    session.update(key_name=found[0], key_created=created, csrf=secrets.token_urlsafe(16), session_id=session_id,
                   key_admin="admin" in found[1])
    return redirect(url_for(".index"), 303)


@bp.post("/logout")
def logout() -> Any:
    """Sign out: end the session server-side (a copied cookie stops working too) and forget it."""
    if not _csrf_ok():
        return _refused()
    if isinstance(session_id := session.get("session_id"), str):
        _tracker().store.end_session(session_id)
    session.clear()
    return redirect(url_for(".login_form"), 303)


@bp.get("/")
@bp.get("")
def index() -> Any:
    """Show the scores for the chosen filters (the last 30 days by default)."""
    user = signed_in()
    if user is None:
        return redirect(url_for(".login_form"))
    tracker = _tracker()
    now_ms = int(time.time() * 1000)
    today = datetime.fromtimestamp(now_ms / 1000, tz=UTC).date()
    errors: dict[str, list[str]] = {}
    known = known_ids(tracker.store)
    try:
        query = load_query(request.args, known, today, tracker.store)
    except ValidationError as exc:
        errors = _messages(exc)
        query = default_query(today)
    data = collect(tracker.store, tracker.settings, now_ms, query, known)
    first_ms = tracker.store.first_activity_ms()
    filters = query.filters
    links = [(preset, url_for(".index", **{"from": preset.date_from.isoformat(), "to": preset.date_to.isoformat(),
                                           **filters}),
              (preset.date_from, preset.date_to) == (query.date_from, query.date_to))
             for preset in presets(today, day_of_ms(first_ms) if first_ms is not None else None)]
    return render_template("dashboard/index.html", user=user, query=query, errors=errors, data=data,
                           at_risk_score=tracker.settings.at_risk_score, csrf_token=csrf_token(), presets=links,
                           export_url=export_url(query), comment_scan=COMMENT_SCAN), \
        400 if errors else 200


def export_url(query: DashboardQuery) -> str:
    """The CSV download of the page's range and filters."""
    return url_for("dashboard_drill.export_csv", **{"from": query.date_from.isoformat(),
                                                   "to": query.date_to.isoformat(), **query.filters})


def _messages(exc: ValidationError) -> dict[str, list[str]]:
    raw = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
    labels = {"date_from": "from", "date_to": "to", "_schema": "filters"}
    return {labels.get(str(name), str(name)): [str(m) for m in (msgs if isinstance(msgs, list) else [msgs])]
            for name, msgs in raw.items()}
