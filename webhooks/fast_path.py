"""The receiver's common case without Flask's request machinery: a signed, well-formed delivery of a known source.

A webhook is the product's most frequent request, and for it Flask's request and app contexts, routing, hooks and
response finalising cost about as much as verifying, parsing and storing the delivery (README, "The receiver's
fast path"). This WSGI layer, between ClientLimits and Flask, answers a delivery with the blueprint's own parts
(Headers, store_delivery, answer) when nothing about it is in doubt: a POST to /webhooks/<source> of a configured
source, a declared body under the limit that arrived whole, the source's media type, a valid signature (or the
shared token of `?token=`, the query read as the blueprint reads it: receiver.query_of) and a body that parses.
Anything else is passed on to the blueprint (webhooks/receiver.py) with the body put back as it came, so that every
refusal, error and page is made in one place, as before; an error met while appending (a storage outage, or a
failure) is handed over too, and raised there instead of appending again.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, request
from werkzeug.http import parse_options_header

from tracker.config import MAX_BODY
from tracker.web.context import Tracker
from tracker.web.limits import TOO_LONG
from webhooks.adapters.base import Delivery, Inbound
from webhooks.receiver import APPEND_FAILED, Headers, answer, configured, media_accepted, query_of, store_delivery

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]
Rendered = tuple[str, list[tuple[str, str]], bytes]

PREFIX = "/webhooks/"
MOST_RENDERED = 64  # answers kept rendered: accepted with 1..n events, duplicate


class WebhookFastPath:
    """WSGI middleware: answer a delivery nothing is in doubt about; pass every other request on unchanged."""

    def __init__(self, app: WsgiApp, flask_app: Flask):
        self.app, self.flask_app = app, flask_app
        self.tracker: Tracker = flask_app.extensions["tracker"]
        self._rendered: dict[tuple[Any, ...], Rendered] = {}

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        answered = self._answer(environ) if environ.get("REQUEST_METHOD") == "POST" else None
        if answered is None:
            return self.app(environ, start_response)
        status, headers, body = answered
        start_response(status, list(headers))
        return [body]

    def _answer(self, environ: Environ) -> Rendered | None:
        """Store the delivery and return its answer, or None to leave the request to the blueprint."""
        taken = self._delivery(environ)
        if taken is None:
            return None
        source, delivery = taken
        try:
            code, fields = store_delivery(self.tracker, source, delivery)
        except Exception as exc:  # an outage (503) or a failure (500): the blueprint answers it, without a second
            environ[APPEND_FAILED] = exc  # append that could find the delivery's mark and call it a duplicate
            return None
        return self._render(code, fields, environ["PATH_INFO"])

    def _delivery(self, environ: Environ) -> tuple[str, Delivery] | None:
        """Return the source and parsed delivery of a request that is certainly one, else None."""
        path = environ.get("PATH_INFO", "")
        if not path.startswith(PREFIX) or environ.get(TOO_LONG):
            return None
        source = path[len(PREFIX):]
        adapter, secret = configured(self.tracker, source)
        declared = str(environ.get("CONTENT_LENGTH") or "")
        if adapter is None or not secret or not declared.isdigit() or int(declared) >= MAX_BODY:
            return None  # chunked, empty or too large: the blueprint reads and answers it
        if not media_accepted(adapter, parse_options_header(environ.get("CONTENT_TYPE", ""))[0].lower()):
            return None  # the media type as werkzeug's request.mimetype reads it
        try:
            body = environ["wsgi.input"].read(int(declared))
        except Exception as exc:  # a body that stopped arriving (408) or a client gone: the blueprint's to answer
            environ["wsgi.input"] = _Failed(exc)
            return None
        environ["wsgi.input"] = io.BytesIO(body)  # for the blueprint, should it answer after all
        if len(body) != int(declared):
            return None
        inbound = Inbound(body=body, headers=Headers(environ), query=query_of(environ), received_at=time.time())
        try:
            adapter.verify(inbound, secret)
            return source, adapter.parse(inbound)
        except Exception:  # refused, ignored or odd: the blueprint verifies and parses again, and answers
            return None

    def _render(self, code: int, fields: dict[str, Any], path: str) -> Rendered:
        """Return an answer as the blueprint's view gives it (status, headers, body), made once by Flask itself:
        the view's answer() through the app's and the blueprint's after-request hooks, then kept."""
        key = (code, *fields.items())
        rendered = self._rendered.get(key)
        if rendered is None:
            with self.flask_app.test_request_context(path, method="POST"):
                response = self.flask_app.process_response(answer(code, **fields))
                headers = response.get_wsgi_headers(request.environ).to_wsgi_list()
            rendered = (response.status, headers, response.get_data())
            if len(self._rendered) < MOST_RENDERED:
                self._rendered[key] = rendered
        return rendered


class _Failed:
    """A request body whose reading failed: the blueprint's read meets the same error."""

    def __init__(self, error: Exception):
        self.error = error

    def read(self, size: int = -1) -> bytes:
        raise self.error

    def readline(self, size: int = -1) -> bytes:
        raise self.error


def install_webhook_fast_path(app: Flask) -> None:
    """Put the fast path in front of Flask (inside ClientLimits, installed after it)."""
    app.wsgi_app = WebhookFastPath(app.wsgi_app, app)  # type: ignore[method-assign]
