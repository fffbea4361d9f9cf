"""The one error envelope, and handlers that make every failure a clear answer, never a 500 page."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from tracker.errors import StorageUnavailable
from tracker.web.limits import MAX_URL

log = logging.getLogger(__name__)
JSON_PREFIXES = ("/api/", "/webhooks/", "/inbound/", "/healthz", "/readyz", "/metrics")
RETRY_AFTER = {"Retry-After": "5"}
SURVEY_PATHS = ("/s/", "/u/")  # what the survey mails link to
# What a sender is told while storage is down, by blueprint; senders of mail and events learn nothing was kept.
UNAVAILABLE_MESSAGES = {
    "webhooks": "Storage is unreachable; nothing was stored. Retry later.",
    "inbound": "Storage is unreachable; nothing was recorded. Retry later.",
    "ops": "Storage is unreachable.",
}


def envelope(code: int, message: str, errors: Mapping[str, Any] | None = None,
             headers: Mapping[str, str] | None = None) -> Response:
    """Build the product's error response: code, status phrase, message, and the fields at fault."""
    body: dict[str, Any] = {"code": code, "status": HTTPStatus(code).phrase, "message": message}
    if errors:
        body["errors"] = dict(errors)
    response = jsonify(body)
    response.status_code = code
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def wants_json() -> bool:
    return request.path.startswith(JSON_PREFIXES)


def page(code: int, title_key: str, text_key: str, lang: str = "en") -> tuple[str, int]:
    """Render a friendly HTML error page for people (plain text if even that fails)."""
    try:
        return render_template("pages/message.html", lang=lang, title_key=title_key, text_key=text_key), code
    except Exception:
        log.exception("error page failed to render")
        return HTTPStatus(code).phrase, code


def unavailable_page(lang: str = "en") -> tuple[str, int, dict[str, str]]:
    """Render the friendly 503 page people see while storage is down."""
    body, _ = page(503, "page.error_title", "page.unavailable_text", lang)
    return body, 503, RETRY_AFTER


def error_page(code: int, lang: str = "en") -> tuple[str, int]:
    """The page a person sees for an HTTP error: a survey link that leads nowhere is a survey not found, any other
    address a page not found, another 4xx a request the page could not take, and only a 5xx our side's fault."""
    if code == 404:
        if request.path.startswith(SURVEY_PATHS):
            return page(404, "page.not_found_title", "page.not_found_text", lang)
        return page(404, "page.missing_title", "page.missing_text", lang)
    if 400 <= code < 500:
        return page(code, "page.bad_request_title", "page.bad_request_text", lang)
    return page(code, "page.error_title", "page.error_text", lang)


MESSAGES = {
    400: "The request could not be understood.",
    404: "Nothing is here.",
    405: "That method is not allowed here.",
    408: "The body stopped arriving before it was complete; send it again.",
    413: "The body is larger than 1 MiB.",
    414: f"The URL is longer than {MAX_URL} bytes.",
    415: "The body must be application/json.",
}


def _message(exc: HTTPException, code: int) -> str:
    """Say what was wrong: what the code that raised it said (tracker.web.limits), else the envelope's own words
    for the status rather than werkzeug's generic description."""
    if exc.description and exc.description != type(exc).description:
        return exc.description
    return MESSAGES.get(code, exc.description or HTTPStatus(code).phrase)


def register_error_handlers(app: Flask) -> None:
    """Answer HTTP errors, storage outages and bugs with the envelope (JSON paths) or a page."""

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        code = exc.code or 500
        if wants_json():
            allowed = getattr(exc, "valid_methods", None)
            headers = {"Allow": ", ".join(allowed)} if allowed else None
            return envelope(code, _message(exc, code), headers=headers)
        return error_page(code)

    @app.errorhandler(StorageUnavailable)
    def storage_down(exc: StorageUnavailable) -> Any:
        log.error("storage unreachable: %s", exc)
        if wants_json():
            message = UNAVAILABLE_MESSAGES.get(request.blueprint or "", "Storage is unreachable; try again shortly.")
            return envelope(503, message, headers=RETRY_AFTER)
        return unavailable_page()

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Any:
        log.exception("unhandled error on %s %s", request.method, request.path)
        if wants_json():
            return envelope(500, "Something went wrong on our side; it has been logged.")
        return page(500, "page.error_title", "page.error_text")
