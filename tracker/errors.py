"""Failures every layer may meet and only the outer surfaces (web handlers, CLI, Celery) turn into answers."""

from __future__ import annotations

import ssl
from collections.abc import Sequence

import redis


class StorageUnavailable(Exception):
    """Redis cannot serve the command right now (down, loading, read-only); retrying later may succeed."""


class ConfigError(Exception):
    """A required variable is missing or a value is malformed; the message names the variable."""


class SettingsProblems(ConfigError):
    """Every problem load_settings found, one line each (`problems`). As a ConfigError it reads as the first of
    them, the one line a process stops with; `tracker check` prints them all."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__(problems[0])
        self.problems = tuple(problems)


# TLS alerts a server ends the handshake with when it will not take this client's certificate (or the lack of one).
CERTIFICATE_ALERTS = ("TLSV13_ALERT_CERTIFICATE_REQUIRED", "SSLV3_ALERT_BAD_CERTIFICATE", "TLSV1_ALERT_UNKNOWN_CA",
                      "SSLV3_ALERT_CERTIFICATE_UNKNOWN", "SSLV3_ALERT_CERTIFICATE_EXPIRED",
                      "SSLV3_ALERT_CERTIFICATE_REVOKED")


def lasting_cause(error: BaseException | None) -> BaseException | None:
    """Return the error under a failure to reach Redis that trying again will not mend, None when there is none: the
    credentials refused (a wrong or missing password, a disabled ACL user), a TLS certificate the client does not
    trust, or a server that will not take the client's certificate (or wants one). They stay as they are until an
    operator changes the URL or the server."""
    for _ in range(8):  # the chain: StorageUnavailable <- redis ConnectionError <- ssl error
        if error is None:
            return None
        if isinstance(error, (redis.AuthenticationError, ssl.SSLCertVerificationError)):
            return error
        if isinstance(error, ssl.SSLError) and error.reason in CERTIFICATE_ALERTS:
            return error
        error = error.__cause__ or error.__context__
    return None
