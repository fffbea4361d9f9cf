"""What one client may hold the web process to: a bounded URL, and a body that keeps arriving and decodes.

Every wait for more bytes of a request body is bounded by READ_IDLE_S: a client that stops mid-body frees
its thread with a 408 instead of holding it until it gives up (8 such uploads used to take all of
gunicorn's threads, /healthz included). The body is still read by the app, when and as far as it wants
(a shared token is checked before a byte of an inbound mail is read). A chunked body gunicorn cannot decode is
a 400 that says so, not an error of the app's (500). A URL longer than MAX_URL is refused
with the error envelope (414); gunicorn's own request-line limit is set above it so that its HTML page is
not what a client meets.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, abort, request
from gunicorn.http.errors import ParseException
from werkzeug.exceptions import BadRequest, RequestTimeout

MAX_URL = 4096  # bytes of path and query string
READ_IDLE_S = 5.0  # the longest wait for the next bytes of a body
TOO_LONG = "tracker.url_too_long"  # environ key: the URL was refused before routing

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]


def _target(environ: Environ) -> str:
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        return str(raw)
    query = environ.get("QUERY_STRING", "")
    return str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", "")) + ("?" + query if query else "")


_READ_IDLE = struct.pack("ll", int(READ_IDLE_S), int(READ_IDLE_S % 1 * 1_000_000))  # SO_RCVTIMEO's struct timeval
_UNBOUNDED = struct.pack("ll", 0, 0)
_STOPPED = (TimeoutError, BlockingIOError)  # a Python timeout's error, and a kernel one's (EAGAIN)
_STOPPED_MESSAGE = "The body stopped arriving before it was complete; send it again."


_STALLS = threading.local()  # .seen: a request this thread serves stopped arriving (see note_stall)


def note_stall() -> None:
    """Note that the request this thread serves stopped arriving (its body: answered 408; its headers: not
    answered), so that the web worker ends the connection at once (tracker.cli.serve.ThreadWorker)."""
    _STALLS.seen = True


def take_stall() -> bool:
    """Say whether note_stall was called in this thread since the last call, and forget it."""
    seen = bool(getattr(_STALLS, "seen", False))
    _STALLS.seen = False
    return seen


def bound_reads(connection: socket.socket) -> None:
    """Bound every wait for the next bytes a client sends on this socket by READ_IDLE_S (the kernel's SO_RCVTIMEO:
    a read that waits longer fails with EAGAIN)."""
    with contextlib.suppress(OSError):  # closed meanwhile
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _READ_IDLE)


class TimedInput:
    """The request body, where a wait that outlasts READ_IDLE_S is a 408, not a disconnect (400).

    The wait is bounded by the kernel (SO_RCVTIMEO on gunicorn's socket, from the first read of the body until
    the app has answered), not by a Python timeout: a socket with one polls before every send and receive,
    the response's included, each a syscall and a hand-over of the interpreter lock to another thread.
    """

    def __init__(self, stream: Any, connection: socket.socket | None):
        self._stream, self._connection = stream, connection
        self.bounded = False

    def read(self, size: int = -1) -> bytes:
        return self._read(self._stream.read, size)

    def readline(self, size: int = -1) -> bytes:
        return self._read(self._stream.readline, size)

    def _read(self, method: Callable[[int], Any], size: int) -> bytes:
        self._bound()
        try:
            return bytes(method(size))
        except _STOPPED as exc:  # gunicorn then closes the connection: the rest of the body never came
            note_stall()
            raise RequestTimeout(_STOPPED_MESSAGE) from exc
        except ParseException as exc:  # gunicorn could not decode the chunked body (its size, terminator, trailer)
            raise BadRequest(f"The body's chunked transfer encoding is malformed ({exc}); "
                             "send it again.") from exc

    def _bound(self) -> None:
        if not self.bounded and self._connection is not None:
            bound_reads(self._connection)
            self.bounded = True

    def unbound(self) -> None:
        """Let gunicorn read the connection's next request as it would without the app: without the bound."""
        if self.bounded and self._connection is not None:
            with contextlib.suppress(OSError):  # closed meanwhile
                self._connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _UNBOUNDED)
            self.bounded = False


class ClientLimits:
    """WSGI middleware: mark an overlong URL, and bound every wait for body bytes by READ_IDLE_S."""

    def __init__(self, app: WsgiApp):
        self.app = app

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if len(_target(environ).encode("latin-1", "replace")) > MAX_URL:
            environ[TOO_LONG] = True
        connection = environ.get("gunicorn.socket")
        plain = type(connection) is socket.socket and connection.gettimeout() is None  # blocking, as gunicorn serves
        if not plain and isinstance(connection, socket.socket):  # TLS: Python's timeout, which gunicorn takes off
            connection.settimeout(READ_IDLE_S)  # again before it serves the connection's next request
        body = TimedInput(environ["wsgi.input"], connection if plain else None)
        environ["wsgi.input"] = body
        try:
            return self.app(environ, start_response)
        finally:
            body.unbound()


def install_client_limits(app: Flask) -> None:
    """Wrap the app in ClientLimits and answer an overlong URL with the app's own 414."""
    app.wsgi_app = ClientLimits(app.wsgi_app)  # type: ignore[method-assign]

    @app.before_request
    def _url_too_long() -> None:
        if request.environ.get(TOO_LONG):
            abort(414)
