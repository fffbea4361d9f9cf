"""Serve the Flask app under gunicorn, configured from settings."""

from __future__ import annotations

import contextlib
import errno
import gc
import re
import socket
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger
from gunicorn.workers.gthread import ThreadWorker as GthreadWorker

from tracker.config import Settings
from tracker.web.limits import READ_IDLE_S, bound_reads, note_stall, take_stall

# Threads, chosen for slow clients. A request holds its thread while its body arrives; one that stalls
# mid-body holds it at most READ_IDLE_S (5 s, tracker/web/limits.py) and then gets a 408, and a request
# waits for a free thread behind the stalled ones. Measured with 2 workers (3 runs each):
#   4 threads, no body timeout (before):   16 stalled uploads -> /healthz unanswered after 120 s
#   4 threads with the body timeout:       16 -> 0-26 s, 32 -> 0-55 s (all may land on one worker)
#   16 threads with the body timeout:      16 -> 0 s,    32 -> 0-33 s
#   32 threads with the body timeout:      16 -> 0 s,    32 -> 0 s,    64 -> 8-42 s
# So 64 threads in all, split over the workers (2 x 32, 4 x 16). Threads cost little here (the work is
# waiting on Redis). An async worker (gevent) would take stalled clients off threads altogether, but needs
# redis-py, kombu and prometheus-client monkey-patched; a buffering reverse proxy in front (README) keeps
# slow clients away from gunicorn entirely.
# Workers, class and threads by measurement (bench/http_run.py --grid, README "Benchmarks"): on the 2-core
# machine the threads per worker (2 to 32) change neither throughput nor p99 beyond the run-to-run noise;
# 4 workers x 16 threads answered 10-15% more receiver and score-card requests than 2 x 32 in head-to-head
# rounds, p99 at half load alike; sync workers (no keep-alive) gained nothing. gthread it is, and by default
# two workers per CPU (4 on such a machine; tracker.config.default_web_workers).
THREADS_IN_ALL = 64
MIN_THREADS = 8
WEB_WORKER_CLASS = "tracker.cli.serve.ThreadWorker"  # gunicorn's gthread, each wait for request bytes bounded
GUNICORN_MAX_REQUEST_LINE = 8190
EMAIL = re.compile(r"[^/@\s]+(?:@|%40)[^/@\s]+")
# Survey and unsubscribe tokens are bearer credentials: whoever holds one answers or unsubscribes for the
# customer. They travel in /s/<token>, /u/<token>, ?token=… and reply+<token>@ addresses.
TOKEN_PATH = re.compile(r"(^|\s|://[^/\s]+)(/[su]/)[^/?#\s]+")
TOKEN_QUERY = re.compile(r"((?:^|[?&;])token=)[^&;#\s]*", re.IGNORECASE)
REPLY_ADDRESS = re.compile(r"(reply(?:\+|%2B))[^@%/?&\s]+", re.IGNORECASE)


def redact(text: str) -> str:
    """Mask survey tokens and email addresses in a request line, path, query or referrer."""
    text = TOKEN_PATH.sub(r"\1\2<token>", text)
    text = TOKEN_QUERY.sub(r"\1<token>", text)
    text = REPLY_ADDRESS.sub(r"\1<token>", text)
    return EMAIL.sub("<email>", text)


# The access log's one line a request: no query strings (tokens), and emails in API paths masked by the logger.
ACCESS_LOG_FORMAT = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms'


class RedactingLogger(Logger):  # type: ignore[misc]
    """Gunicorn's logger, with survey tokens and email addresses masked wherever a request names them."""

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        for name in ("U", "r", "q", "f"):  # path, request line, query string, referrer
            atoms[name] = redact(str(atoms.get(name, "")))
        return atoms

    def exception(self, msg: str, *args: Any, **kwargs: Any) -> None:
        """Log an error with its traceback, but a client that stopped sending its request (ThreadWorker) in a line."""
        if _stalled_request():
            self.info("A client sent no more of its request for %g s; its connection was closed.", READ_IDLE_S)
            return
        super().exception(msg, *args, **kwargs)

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        """Log a request with only the atoms ACCESS_LOG_FORMAT names, as gunicorn's atoms() gives them.

        gunicorn builds every atom of every request (each header and environ entry, the date) for a format
        that reads six, and the redaction then ran over four of them: 40 µs a request, 12.5 µs this way."""
        if self.cfg.access_log_format != ACCESS_LOG_FORMAT:
            super().access(resp, req, environ, request_time)  # another format: every atom, redacted as above
            return
        if not getattr(self, "access_log_enabled", True):  # gunicorn before 25 checks its handlers only
            return
        status = resp.status
        sent = getattr(resp, "sent", None)
        atoms = {"h": environ.get("REMOTE_ADDR", "-"), "m": environ.get("REQUEST_METHOD"),
                 "U": redact(str(environ.get("PATH_INFO", ""))),
                 "s": status.split(None, 1)[0] if isinstance(status, str) else status,
                 "b": str(sent) if sent is not None else "-",
                 "M": request_time.seconds * 1000 + int(request_time.microseconds / 1000)}
        try:
            self.access_log.info(ACCESS_LOG_FORMAT, atoms)
        except Exception:
            self.error(traceback.format_exc())


class ThreadWorker(GthreadWorker):  # type: ignore[misc]
    """gunicorn's gthread worker, where a client that stops sending its request line or headers for READ_IDLE_S
    loses its connection instead of holding a thread for as long as it trickles on (slowloris).

    gthread reads a request line and its headers in a thread, from a blocking socket: a client that stopped
    half-way held that thread for as long as it kept the connection open, and as many such clients as threads held
    the whole web process, /healthz included. The bound is the kernel's (SO_RCVTIMEO, as tracker.web.limits puts on
    a body's reads), set again each time a kept-alive connection's next request comes.
    """

    def handle(self, conn: Any) -> Any:
        if type(conn.sock) is not socket.socket:  # TLS sockets (gunicorn's own, unused here) as gunicorn has them
            return super().handle(conn)
        bound_reads(conn.sock)
        take_stall()
        result = super().handle(conn)
        if take_stall():  # the client stopped sending: nothing more of it is on the way
            _close(conn.sock, linger_s=0)
            return False
        if result is False:  # to be closed (not kept alive, nor deferred to the poller)
            _close(conn.sock, linger_s=CLOSE_LINGER_S)
        return result


CLOSE_LINGER_S = 2.0  # as gunicorn's graceful close waits for the client's side


def _close(connection: socket.socket, linger_s: float) -> None:
    """Close a connection's sending side and wait at most linger_s in this thread for the client to close its own,
    reading off what it still sends (at most 64 KiB), then shut the reading side too.

    The same graceful close gunicorn makes (since 25; RFC 9112 section 9.6: an answer, a 413 say, followed by a
    reset because the client's upload was left unread can be lost to the client), but here, not in gunicorn's main
    loop, which accepts and dispatches every connection: there a dozen clients that sent `Connection: close` (or a
    body that stopped arriving) and kept their side open held every other request 2 s each, /healthz 24 s. With the
    reading side shut, gunicorn's own close that follows finds nothing to wait for."""
    deadline = time.monotonic() + linger_s
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_WR)
        for _ in range(16):
            left = deadline - time.monotonic()
            connection.settimeout(left if left > 0 else 0.0)  # 0: only what has come already
            if not connection.recv(4096):
                break
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_RD)


def _stalled_request() -> bool:
    """Say whether the exception being handled is a wait for request bytes that ran out (ThreadWorker's bound), and
    note it for the thread's ThreadWorker.handle."""
    exc = sys.exc_info()[1]
    stalled = isinstance(exc, OSError) and exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.ETIMEDOUT)
    if stalled:
        note_stall()
    return stalled


def threads_per_worker(workers: int) -> int:
    """Return each worker's share of THREADS_IN_ALL (at least MIN_THREADS)."""
    return max(MIN_THREADS, THREADS_IN_ALL // max(1, workers))


@dataclass(frozen=True)
class WebProcesses:
    """How gunicorn runs the app: worker processes (None: TRACKER_WEB_WORKERS), threads each (None: their share
    of THREADS_IN_ALL), worker class."""

    workers: int | None = None
    threads: int | None = None
    worker_class: str = WEB_WORKER_CLASS


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings, processes: WebProcesses, app: Callable[[Settings], Any]):
        self.settings, self.processes, self.app = settings, processes, app
        super().__init__()

    def load_config(self) -> None:
        self.cfg.set("bind", [self.settings.bind])
        workers = self.processes.workers or self.settings.web_workers
        self.cfg.set("workers", workers)
        # Slow clients: see THREADS_IN_ALL. Each wait for body bytes is bounded by the app's ClientLimits.
        self.cfg.set("threads", self.processes.threads or threads_per_worker(workers))
        self.cfg.set("worker_class", self.processes.worker_class)
        self.cfg.set("timeout", 30)
        # gunicorn's largest request line, so that the app's own, smaller limit answers with the envelope (414).
        self.cfg.set("limit_request_line", GUNICORN_MAX_REQUEST_LINE)
        self.cfg.set("graceful_timeout", 10)
        self.cfg.set("accesslog", "-")
        self.cfg.set("access_log_format", ACCESS_LOG_FORMAT)
        self.cfg.set("logger_class", "tracker.cli.serve.RedactingLogger")
        self.cfg.set("proc_name", "tracker-web")
        # gunicorn 25.1+ opens a control socket for gunicornc at one path per user ($XDG_RUNTIME_DIR/gunicorn.ctl or
        # ~/.gunicorn/gunicorn.ctl): a second `tracker web` on the host (staging beside production, `make run`)
        # takes it over, and whichever stops first deletes it, so gunicornc would reload, rescale or stop the wrong
        # installation. The tracker is run by systemd or compose signals, not gunicornc: no control socket.
        if "control_socket_disable" in self.cfg.settings:
            self.cfg.set("control_socket_disable", True)

    def load(self) -> Any:
        # Runs in each gunicorn worker after the fork, so every worker has its own broker connections.
        return self.app(self.settings)


def web_app(settings: Settings) -> Any:
    """Build the app a gunicorn worker serves, with the broker's enqueue and queue length."""
    from tracker.web.app import create_app, warm_up
    from workers.celery_app import create_celery, queue_length, web_enqueue

    celery = create_celery(settings)
    _load_sending_parts(celery)
    app = create_app(settings, enqueue=web_enqueue(celery), queue_length=queue_length(celery))
    warm_up(app)
    # What is built by now lives as long as the worker: out of the collector's sight, a full collection no longer
    # walks it. Measured on a score card, 20,000 requests in one process: the one full collection among them
    # held its request 30-34 ms, and none was over 5 ms once frozen (p50 and p99 alike, 0.5 and 0.7 ms).
    gc.collect()
    gc.freeze()
    return app


def _load_sending_parts(celery: Any) -> None:
    """Load what Celery and kombu import on the first send (the first webhook's kick), without connecting."""
    celery.loader.import_default_modules()
    celery.amqp.router  # noqa: B018  (lazy properties: reading them imports and builds)
    celery.backend  # noqa: B018
    celery.events.Dispatcher  # noqa: B018
    with celery.connection_for_write() as connection:
        connection.transport  # noqa: B018


def serve_web(settings: Settings, processes: WebProcesses | None = None,
              app: Callable[[Settings], Any] = web_app) -> None:
    """Run gunicorn in the foreground until it is told to stop (bench/http_run.py serves its baselines through it)."""
    _Gunicorn(settings, processes or WebProcesses(), app).run()
