"""Flask's signed-cookie sessions, without their cost on requests that carry no cookie (webhooks, the API).

Flask builds the session's signing serializer on every request and parses the Cookie header even when there is
none; only the dashboard has a session. Here the serializer is built once per set of secret keys, and a request
without a Cookie header gets the new empty session Flask would have given it.
"""

from __future__ import annotations

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer


class CookieSessions(SecureCookieSessionInterface):
    """SecureCookieSessionInterface with the same cookies, signatures and sessions, built once."""

    def __init__(self) -> None:
        self._serializers: dict[tuple[object, ...], URLSafeTimedSerializer | None] = {}

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        keys = (app.secret_key, *(app.config["SECRET_KEY_FALLBACKS"] or ()))
        if keys not in self._serializers:
            self._serializers[keys] = super().get_signing_serializer(app)
        return self._serializers[keys]

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if not request.environ.get("HTTP_COOKIE") and self.get_signing_serializer(app) is not None:
            return self.session_class()  # what Flask opens when the request has no session cookie
        return super().open_session(app, request)
