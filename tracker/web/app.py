"""The Flask app for people and senders: webhooks, survey pages, the leads' API, probes."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from jinja2 import BaseLoader, ChoiceLoader, FileSystemLoader

from tracker.config import MAX_BODY, Settings
from tracker.i18n.catalogue import text
from tracker.metrics import QueueLength, metrics_registry
from tracker.store import Store
from tracker.web.context import Tracker


def create_app(settings: Settings, store: Store | None = None, *, enqueue: Callable[..., None],
               queue_length: QueueLength | None = None) -> Flask:
    """Build the app from settings and the broker's enqueue (and queue length) functions the caller owns."""
    from tracker.web.api.customers import bp as api_bp
    from tracker.web.dashboard.views import bp as dashboard_bp
    from tracker.web.errors import register_error_handlers
    from tracker.web.ops import bp as ops_bp
    from tracker.web.pages.survey import bp as survey_bp
    from webhooks.inbound_mail import bp as inbound_bp
    from webhooks.receiver import bp as webhooks_bp

    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=MAX_BODY, SECRET_KEY=settings.secret_key, JSON_SORT_KEYS=False)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    store = store or Store.from_url(settings.redis_url)
    app.extensions["tracker"] = Tracker(settings, store, enqueue, metrics_registry(store, queue_length))
    if settings.template_dir:  # the operator's pages/<name>.html replace the packaged ones by name
        loaders: list[BaseLoader] = [FileSystemLoader(settings.template_dir)]
        app.jinja_loader = ChoiceLoader(loaders + ([app.jinja_loader] if app.jinja_loader else []))
    app.jinja_env.globals["t"] = text
    for blueprint in (ops_bp, webhooks_bp, inbound_bp, survey_bp, api_bp, dashboard_bp):
        app.register_blueprint(blueprint)
    register_error_handlers(app)
    return app
