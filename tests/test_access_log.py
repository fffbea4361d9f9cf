"""`tracker web`'s access log line (tracker.cli.serve.RedactingLogger): gunicorn's own line for the format, with
survey tokens and email addresses masked, built from the six atoms the format reads."""

from __future__ import annotations

import datetime
import logging
from typing import Any

import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger

from tracker.cli.serve import ACCESS_LOG_FORMAT, RedactingLogger


class Response:
    def __init__(self, status: str, sent: int | None):
        self.status, self.sent = status, sent
        self.headers = [("Content-Type", "application/json"), ("X-Request-Id", "r-1")]


class Request:
    headers = [("HOST", "csat.example"), ("USER-AGENT", "curl/8"), ("REFERER", "https://x.test/s/tok?token=t")]


def environ(method: str, path: str, query: str = "") -> dict[str, Any]:
    return {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query, "RAW_URI": path + "?" + query,
            "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "10.0.0.7", "HTTP_USER_AGENT": "curl/8"}


def lines(calls: list[tuple[Any, ...]], every_atom: bool = False, fmt: str = ACCESS_LOG_FORMAT) -> list[str]:
    """Log the calls with RedactingLogger; every_atom: through gunicorn's own access() (every atom built, the
    redacting atoms() override applied), as the logger did before it built only the format's atoms."""
    config = Config()
    config.set("accesslog", "-")
    config.set("access_log_format", fmt)
    logger = RedactingLogger(config)
    written: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            written.append(record.getMessage())

    logger.access_log.handlers = [Keep()]
    for call in calls:
        (Logger.access if every_atom else RedactingLogger.access)(logger, *call)
    return written


CALLS = [
    (Response("202 ACCEPTED", 41), Request(), environ("POST", "/webhooks/standard"),
     datetime.timedelta(microseconds=1830)),
    (Response("200 OK", 2048), Request(), environ("GET", "/s/aaaatoken1-bbbbsig1", "rating=5"),
     datetime.timedelta(seconds=1, microseconds=250_999)),
    (Response("404 NOT FOUND", None), Request(), environ("GET", "/api/v1/customers/kari@example.no"),
     datetime.timedelta(0)),
    (Response("200 OK", 0), Request(), environ("GET", "/u/ccccunsub2-ddddsig2"), datetime.timedelta(milliseconds=3)),
]


def test_each_line_is_the_one_gunicorn_s_atoms_give_with_tokens_and_addresses_masked():
    ours = lines(CALLS)
    assert ours == lines(CALLS, every_atom=True)
    assert ours[0] == '10.0.0.7 "POST /webhooks/standard" 202 41 1ms'
    assert ours[1] == '10.0.0.7 "GET /s/<token>" 200 2048 1250ms'
    assert ours[2] == '10.0.0.7 "GET /api/v1/customers/<email>" 404 - 0ms'


@pytest.mark.parametrize("fmt", ['%(h)s %(r)s %(q)s %(f)s "%(a)s"', '%(t)s %({x-request-id}o)s %(u)s'])
def test_another_format_gets_every_atom_redacted(fmt):
    (written,) = lines(CALLS[1:2], fmt=fmt)
    assert "aaaatoken1" not in written and "%(" not in written, written
