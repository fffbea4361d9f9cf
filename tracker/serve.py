"""Serve the Flask app under gunicorn, configured from settings."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from tracker.config import Settings


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings):
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        self.cfg.set("bind", [self.settings.bind])
        self.cfg.set("workers", self.settings.web_workers)
        self.cfg.set("threads", 4)
        self.cfg.set("worker_class", "gthread")
        self.cfg.set("timeout", 30)
        self.cfg.set("graceful_timeout", 10)
        self.cfg.set("accesslog", "-")
        # Query strings carry survey ratings, never personal data; paths carry emails on the API.
        self.cfg.set("access_log_format", '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms')
        self.cfg.set("proc_name", "tracker-web")

    def load(self) -> Any:
        from tracker.web import create_app

        return create_app(self.settings)


def serve_web(settings: Settings) -> None:
    """Run gunicorn in the foreground until it is told to stop."""
    _Gunicorn(settings).run()
