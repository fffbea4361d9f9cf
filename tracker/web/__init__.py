"""The Flask app for people and senders: webhooks, survey pages, the leads' API, probes."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask

from tracker.config import Settings
from tracker.i18n import text
from tracker.store import Store

log = logging.getLogger(__name__)
MAX_BODY = 1024 * 1024


@dataclass
class Tracker:
    """What the views need, kept in app.extensions["tracker"]."""

    settings: Settings
    store: Store
    enqueue: Callable[[str], None]

    def kick(self, task: str) -> None:
        """Enqueue a task without failing the request; beat's periodic runs cover a lost kick."""
        try:
            self.enqueue(task)
        except Exception as exc:  # the broker being down must not fail an already stored event
            log.warning("could not enqueue %s: %s", task, type(exc).__name__)


def _celery_enqueue(settings: Settings) -> Callable[[str], None]:
    app = None

    def enqueue(task: str) -> None:
        nonlocal app
        if app is None:
            from celery import Celery

            app = Celery("tracker-web", broker=settings.broker_url, set_as_current=False)
            app.conf.update(task_default_queue="tracker", broker_connection_retry=False,
                            broker_connection_max_retries=0)
        app.send_task(task)

    return enqueue


def create_app(settings: Settings, store: Store | None = None,
               enqueue: Callable[[str], None] | None = None) -> Flask:
    """Build the app from settings; tests may pass their own store and enqueue function."""
    from tracker.web.api import bp as api_bp
    from tracker.web.errors import register_error_handlers
    from tracker.web.health import bp as health_bp
    from tracker.web.survey import bp as survey_bp
    from webhooks.receiver import bp as webhooks_bp

    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=MAX_BODY, SECRET_KEY=settings.secret_key, JSON_SORT_KEYS=False)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["tracker"] = Tracker(settings, store or Store.from_url(settings.redis_url),
                                        enqueue or _celery_enqueue(settings))
    app.jinja_env.globals["t"] = text
    for blueprint in (health_bp, webhooks_bp, survey_bp, api_bp):
        app.register_blueprint(blueprint)
    register_error_handlers(app)
    return app
