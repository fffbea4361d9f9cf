"""The Flask app for people and senders: webhooks, survey pages, the leads' API, probes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from flask import Flask, Response
from flask.json.provider import DefaultJSONProvider
from jinja2 import BaseLoader, ChoiceLoader, FileSystemLoader
from werkzeug.routing import PathConverter

from tracker import text as jsontext
from tracker.config import MAX_BODY, Settings
from tracker.i18n.catalogue import SUPPORTED, format_date, text
from tracker.store import Store
from tracker.web.clients import install_client_addresses
from tracker.web.context import Tracker
from tracker.web.limits import install_client_limits
from tracker.web.metrics import QueueLength, metrics_registry
from tracker.web.sessions import CookieSessions

# Every HTML page (survey, unsubscribe, error, dashboard) gets these: nothing from other hosts, no inline
# script or style, never framed, and no token-bearing URL sent as a referrer to another site.
CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'"
HTML_HEADERS = {"Content-Security-Policy": CSP, "Referrer-Policy": "same-origin"}


class NestingJSONProvider(DefaultJSONProvider):
    """Flask's JSON, where a body nested deeper than the parser's recursion allows is invalid JSON (a ValueError,
    which request.get_json answers with a 400 or, silent, None) rather than a RecursionError (a 500), and a lone
    surrogate's escape reads as U+FFFD (tracker.text)."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            return jsontext.loads(s.decode("utf-8") if isinstance(s, bytes) else s) if not kwargs \
                else super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("the JSON is nested too deeply") from None


class TrackerFlask(Flask):
    """Flask, deciding once per view and hook whether it must be run through async_to_sync: Flask's own
    ensure_sync inspects the function (inspect.iscoroutinefunction) on every call, three a request."""

    json_provider_class = NestingJSONProvider

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        known: dict[Callable[..., Any], Callable[..., Any]] = self.__dict__.setdefault("_synced", {})
        synced = known.get(func)
        if synced is None:
            synced = super().ensure_sync(func)
            if len(known) < 1024:  # views and hooks are a few dozen; anything made per request is not kept
                known[func] = synced
        return synced


def create_app(settings: Settings, store: Store | None = None, *, enqueue: Callable[..., None],
               queue_length: QueueLength | None = None) -> Flask:
    """Build the app from settings and the broker's enqueue (and queue length) functions the caller owns."""
    from tracker.web.api.customers import bp as api_bp
    from tracker.web.dashboard.cases import bp as dashboard_cases_bp
    from tracker.web.dashboard.customers import bp as dashboard_customers_bp
    from tracker.web.dashboard.drill import bp as dashboard_drill_bp
    from tracker.web.dashboard.views import bp as dashboard_bp
    from tracker.web.errors import register_error_handlers
    from tracker.web.ops import bp as ops_bp
    from tracker.web.pages.brand import bp as brand_bp
    from tracker.web.pages.home import bp as home_bp
    from tracker.web.pages.survey import bp as survey_bp
    from webhooks.fast_path import install_webhook_fast_path
    from webhooks.inbound_mail import bp as inbound_bp
    from webhooks.receiver import bp as webhooks_bp

    app = TrackerFlask(__name__)
    # "/s//x" is not a survey link: a 404 page, not a redirect to a different path than the one asked for.
    app.url_map.merge_slashes = False
    app.url_map.converters["id"] = IdConverter
    app.config.update(MAX_CONTENT_LENGTH=MAX_BODY, SECRET_KEY=settings.secret_key, JSON_SORT_KEYS=False,
                      SECRET_KEY_FALLBACKS=list(settings.previous_secret_keys))  # sessions signed before a rotation
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.session_interface = CookieSessions()
    store = store or Store.from_url(settings.redis_url)
    app.extensions["tracker"] = Tracker(settings, store, enqueue, metrics_registry(store, queue_length))
    if settings.template_dir:  # the operator's pages/<name>.html replace the packaged ones by name
        loaders: list[BaseLoader] = [FileSystemLoader(settings.template_dir)]
        app.jinja_loader = ChoiceLoader(loaders + ([app.jinja_loader] if app.jinja_loader else []))
    app.jinja_env.globals["t"] = text
    for blueprint in (home_bp, ops_bp, webhooks_bp, inbound_bp, survey_bp, brand_bp, api_bp, dashboard_bp,
                      dashboard_cases_bp, dashboard_customers_bp, dashboard_drill_bp):
        app.register_blueprint(blueprint)
    register_error_handlers(app)
    install_webhook_fast_path(app)
    install_client_limits(app)  # around the fast path: it bounds the fast path's body reads too
    install_client_addresses(app, settings.forwarded_allow_ips)  # outermost: every request's client, logged too
    app.after_request(security_headers)
    return app


class IdConverter(PathConverter):
    """`<id:…>`: the rest of the path, slashes included, as an id from outside was given ("a/b", "/ops").

    Werkzeug's `path` refuses a leading slash, so a team, tag or organisation whose name starts with one, listed
    by `/api/v1/teams`, had no address of its own (`/api/v1/teams//ops` was "No such API endpoint"). Werkzeug's
    matcher takes a regex that may start with anything (".+?") as one it cannot place and prefers the catch-all;
    this one names its first character's two cases."""

    regex = "(?:/|[^/])(?s:.*?)"


def warm_up(app: Flask) -> None:
    """Do before the first request what it would do: compile every page template, load each language's dates."""
    # Only for served apps (tracker.cli.serve): tests build many apps and need not pay for it each time.
    for name in app.jinja_env.list_templates(extensions=("html", "txt")):
        app.jinja_env.get_template(name)
    for lang in SUPPORTED:
        format_date(lang, date(2026, 12, 1))


def security_headers(response: Response) -> Response:
    """Give every response nosniff, and every HTML page the content policy and referrer policy."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if response.mimetype == "text/html":
        for name, value in HTML_HEADERS.items():
            response.headers.setdefault(name, value)
    return response
