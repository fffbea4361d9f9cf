"""HTTP run: the product's hot paths over real processes, each against a baseline measured in the same session.

    .venv/bin/python bench/http_run.py                    # `make bench` runs it
    .venv/bin/python bench/http_run.py --grid             # only the receiver and card under several gunicorn settings

Every server is a real gunicorn started through tracker.cli.serve with the same settings for the product and
its baseline (a bare Flask app, which logs its requests with gunicorn's own logger: masking tokens and addresses
in the access log is the product's work). The load comes from wrk when it is installed (Debian's package: it leaves
the servers more of a 2-core machine than a Python client), else from bench/load.py in processes of its own;
open-loop runs (a fixed rate, for p99) and runs of an exact count always use bench/load.py. Baseline and
product take turns, round by round, and the best round of each is compared.

1. receiver: signed POST /webhooks/standard, a new delivery each time, against a bare Flask POST that parses
   the same JSON body;
2. accepted and applied: the same webhooks with a real `tracker worker` and `tracker beat` running, counted
   until the last event is applied (its customer exists), against the bare POST (run first, on an empty log);
3. score card: GET /api/v1/customers/<email> with an API key against a bare Flask GET of one Redis hash; then
   both at half the card's best rate (open loop), p50 and p99;
4. surveys: N surveys due at once, sent by a real `tracker worker` and `tracker beat` (default sweep interval)
   to an SMTP sink in a process of its own, against a bare smtplib loop sending the same mail to the same sink.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import multiprocessing
import os
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, bench_env, bench_settings, git_commit, redis_server
from load import LoadResult, request_bytes, run_load, run_wrk, wrk_available

from tests.signing import signed
from tracker.cli.dev import free_port
from tracker.cli.serve import WEB_WORKER_CLASS, WebProcesses, serve_web, threads_per_worker
from tracker.config import Settings
from tracker.store import Store, keys

PYTHON = sys.executable
TRACKER = str(Path(PYTHON).parent / "tracker")
# Candidates that keep at least 32 threads in all for slow clients (tracker/cli/serve.py), and gunicorn's own
# default (1 sync worker per process, no keep-alive) for reference.
SETTINGS_GRID = ((2, 32, "gthread"), (2, 16, "gthread"), (4, 8, "gthread"), (4, 16, "gthread"), (3, 16, "gthread"),
                 (4, 1, "sync"))


# --- the servers ------------------------------------------------------------------------------------------

def bare_app(settings: Settings) -> Any:
    """The baselines: a Flask POST that parses JSON, a Flask GET of one Redis hash."""
    import redis
    from flask import Flask, request

    app = Flask("bare")
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)

    @app.post("/hook")
    def hook() -> Any:
        return {"status": "accepted", "events": len([request.get_json()])}, 202

    @app.get("/hash/<path:email>")
    def one_hash(email: str) -> Any:
        return client.hgetall(keys.customer(email, "profile"))

    @app.get("/healthz")
    def healthz() -> Any:
        return {"status": "ok"}

    return app


def serve(args: argparse.Namespace) -> None:
    """Run one gunicorn (the `serve` sub-command, started by the benchmark itself)."""
    from tracker.cli.serve import web_app

    settings = bench_settings(dict(os.environ))
    processes = WebProcesses(args.workers, args.threads, args.worker_class)
    if args.app == "bare":
        # The same settings, access log and format included, with gunicorn's own logger: masking tokens and
        # addresses in the log (RedactingLogger, named by its path in the settings) is the product's work.
        from gunicorn.glogging import Logger

        import tracker.cli.serve

        tracker.cli.serve.RedactingLogger = Logger  # type: ignore[misc]
    serve_web(settings, processes, bare_app if args.app == "bare" else web_app)


class Server:
    """A gunicorn (product or bare) in a process of its own, on a free port."""

    def __init__(self, app: str, env: dict[str, str], workers: int, threads: int, worker_class: str):
        self.port = free_port()
        self.process = subprocess.Popen(
            [PYTHON, __file__, "serve", app, "--workers", str(workers), "--threads", str(threads), "--worker-class",
             worker_class], env={**os.environ, **env, "TRACKER_BIND": f"127.0.0.1:{self.port}"},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"bench: the {app} server exited with {self.process.returncode}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if s.recv(100).startswith(b"HTTP/1.1 200"):
                    break
            time.sleep(0.1)
        else:
            self.stop()
            raise SystemExit(f"bench: the {app} server did not answer /healthz")
        time.sleep(1)  # every worker up, not only the first to answer

    def stop(self) -> None:
        stop_process(self.process)


def stop_process(process: subprocess.Popen[Any]) -> None:
    """Stop a process group we started: TERM, then KILL after 20 s."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextlib.contextmanager
def servers(env: dict[str, str], workers: int, threads: int, worker_class: str) -> Iterator[tuple[Server, Server]]:
    product = Server("product", env, workers, threads, worker_class)
    try:
        bare = Server("bare", env, workers, threads, worker_class)
        try:
            yield product, bare
        finally:
            bare.stop()
    finally:
        product.stop()


def start_tracker(env: dict[str, str], *args: str) -> subprocess.Popen[Any]:
    # A TMPDIR of its own: beat keeps its schedule there, apart from any other beat on the machine.
    private = tempfile.mkdtemp(prefix="bench-tracker-")
    atexit.register(shutil.rmtree, private, True)
    return subprocess.Popen([TRACKER, *args], env={**os.environ, **env, "TMPDIR": private}, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


# --- requests ---------------------------------------------------------------------------------------------

def solved(n: int, tag: str, at: str | None = None) -> dict[str, Any]:
    return {"type": "ticket.solved", "id": f"evt-{tag}-{n}",
            "occurred_at": at or datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "ticket": {"id": f"{tag}-{n}", "subject": "Card declined", "status": "solved", "team": "billing",
                       "brand": "acme", "agent": {"id": f"a-{n % 20}", "name": f"Agent {n % 20}"}},
            "customer": {"id": f"{tag}-c{n}", "email": f"{tag}-{n}@example.no", "name": f"Customer {n}"}}


def webhooks(tag: str, count: int) -> tuple[list[bytes], list[bytes]]:
    """Return count signed webhook requests, each a new delivery, and the same requests to the bare /hook."""
    product, bare = [], []
    for n in range(count):
        body = json.dumps(solved(n, tag)).encode()
        headers, _ = signed("standard", body, headers={"webhook-id": f"msg-{tag}-{n}"})
        headers = {"Content-Type": "application/json", **headers}
        product.append(request_bytes("POST", "/webhooks/standard", headers, body))
        bare.append(request_bytes("POST", "/hook", headers, body))
    return product, bare


def statuses(result: LoadResult) -> str:
    return ", ".join(f"{count:,} x {status}" for status, count in sorted(result.statuses.items()))


def best(results: list[LoadResult]) -> LoadResult:
    return max(results, key=lambda r: r.rate)


# --- the runs ---------------------------------------------------------------------------------------------

class Run:
    def __init__(self, args: argparse.Namespace, env: dict[str, str], store: Store):
        self.args, self.env, self.store = args, env, store
        self.rows: list[tuple[str, str, str, str]] = []
        self.tags = 0

    def tag(self) -> str:
        self.tags += 1
        return f"h{self.tags}"

    def load(self, port: int, requests: list[bytes], **kwargs: Any) -> LoadResult:
        """Closed loop for seconds through wrk when it is installed, else (and open loop, or a count) in Python."""
        if not kwargs and self.args.wrk:
            return run_wrk(port, requests, connections=self.args.connections, seconds=self.args.seconds)
        options = {"processes": self.args.load_processes, "connections": self.args.connections,
                   "seconds": self.args.seconds, **kwargs}
        return run_load(port, requests, **options)

    def receiver(self, product: Server, bare: Server) -> tuple[LoadResult, LoadResult]:
        """Return the best round of the receiver and of the bare POST."""
        ours: list[LoadResult] = []
        theirs: list[LoadResult] = []
        for round_ in range(self.args.rounds):
            mine, base = webhooks(self.tag(), int(self.args.seconds * 10_000))
            runs = [(bare, base, theirs), (product, mine, ours)]
            for server, requests, into in (runs if round_ % 2 == 0 else runs[::-1]):
                into.append(self.load(server.port, requests))
        return best(ours), best(theirs)

    def card(self, product: Server, bare: Server, emails: list[str], key: str) -> dict[str, LoadResult]:
        auth = {"Authorization": f"Bearer {key}"}
        mine = [request_bytes("GET", f"/api/v1/customers/{e}", auth) for e in emails]
        base = [request_bytes("GET", f"/hash/{e}", auth) for e in emails]
        ours: list[LoadResult] = []
        theirs: list[LoadResult] = []
        for round_ in range(self.args.rounds):
            runs = [(bare, base, theirs), (product, mine, ours)]
            for server, requests, into in (runs if round_ % 2 == 0 else runs[::-1]):
                into.append(self.load(server.port, requests))
        found = {"card": best(ours), "hash": best(theirs)}
        half = found["card"].rate / 2
        found["card half"] = self.load(product.port, mine, rate=half)
        found["hash half"] = self.load(bare.port, base, rate=half)
        return found

    def applied(self, product: Server, bare: Server) -> tuple[float, LoadResult, float]:
        """Return events/s from the first POST until the last event is applied by a real worker, the bare POST,
        and how long the worker trailed the last accepted POST."""
        worker = start_tracker(self.env, "worker", "--loglevel", "WARNING")
        beat = start_tracker(self.env, "beat", "--loglevel", "WARNING")  # as deployed: it drains every 5 s too
        try:
            time.sleep(self.args.worker_start)
            count = int(self.args.applied)
            tag = self.tag()
            mine, base = webhooks(tag, count)
            theirs = [self.load(bare.port, base, count=count, seconds=600)]
            start = time.perf_counter()
            posted = self.load(product.port, mine, count=count, seconds=600)
            accepted = time.perf_counter()
            if posted.statuses.get(202) != count:
                print(f"  accepted-and-applied: the webhooks were answered {statuses(posted)}", flush=True)
            wanted = posted.statuses.get(202, 0)
            profiles = [keys.customer(f"{tag}-{n}@example.no", "profile") for n in range(count)]
            if not wait_until(lambda: existing(self.store, profiles) >= wanted, timeout=600):
                raise SystemExit(f"bench: only {existing(self.store, profiles):,} of {wanted:,} events applied")
            done = time.perf_counter()
            theirs.append(self.load(bare.port, base, count=count, seconds=600))
        finally:
            stop_process(beat)
            stop_process(worker)
        return wanted / (done - start), best(theirs), done - accepted


def existing(store: Store, names: list[str]) -> int:
    return sum(int(store.redis.exists(*names[i:i + 1000])) for i in range(0, len(names), 1000))


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


# --- surveys ----------------------------------------------------------------------------------------------

def sink_process(port: int, count: Any, first: Any, last: Any) -> None:
    """Run an SMTP sink that counts what it receives (and keeps nothing) until terminated."""
    from aiosmtpd.controller import Controller

    class Counting:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            now = time.time()
            with count.get_lock():
                count.value += 1
                if count.value == 1:
                    first.value = now
                last.value = now
            return "250 OK"

    controller = Controller(Counting(), hostname="127.0.0.1", port=port)
    controller.start()
    signal.sigwait({signal.SIGTERM})
    controller.stop()


class Sink:
    def __init__(self) -> None:
        ctx = multiprocessing.get_context("fork")
        self.port = free_port()
        self.count, self.first, self.last = ctx.Value("l", 0), ctx.Value("d", 0.0), ctx.Value("d", 0.0)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        self.process = ctx.Process(target=sink_process, args=(self.port, self.count, self.first, self.last))
        self.process.start()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        wait_until(self._listening, timeout=10)

    def _listening(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
            return True
        return False

    def reset(self) -> None:
        with self.count.get_lock():
            self.count.value, self.first.value, self.last.value = 0, 0.0, 0.0

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(10)


def survey_message() -> Any:
    """Return one survey mail as the product builds it, for the bare loop to send."""
    from tracker.mail.message import SurveyMail, build_survey_message

    mail = SurveyMail(to_email="kari@example.no", to_name="Kari Nordmann", lang="nb", scale_name="csat5",
                      ticket_ref="#1001", ticket_subject="Card declined", mail_from="Acme <support@acme.test>",
                      message_id="<s1@acme.test>", rating_url="https://csat.example/s/tok?rating={value}",
                      unsubscribe_url="https://csat.example/u/tok", reply_to="reply+tok@acme.test",
                      expires_at=datetime.now(tz=UTC) + timedelta(days=14))
    return build_survey_message(mail)


def bare_smtp(sink: Sink, count: int) -> float:
    """Send count mails over one connection with smtplib; return mails/s."""
    message = survey_message()
    sink.reset()
    start = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", sink.port) as smtp:
        for n in range(count):
            smtp.send_message(message, "support@acme.test", [f"s{n}@example.no"])
    wait_until(lambda: sink.count.value >= count, timeout=60)
    return count / (time.perf_counter() - start)


def due_surveys(store: Store, settings: Settings, count: int) -> None:
    """Put count surveys due now into the store the product's way: solved tickets replayed and applied."""
    from scale import drain_all

    from tracker.cli.migrate import known_sources
    from tracker.ingest.replay import replay_file

    at = (datetime.now(tz=UTC) - timedelta(seconds=settings.survey_delay + 60)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for first in range(0, count, 2000):
        lines = [json.dumps(solved(n, "mail", at)).encode() for n in range(first, min(first + 2000, count))]
        replay_file(store, settings, lines, "standard", known_sources())
        drain_all(store, settings)


def surveys(args: argparse.Namespace, env: dict[str, str], store: Store) -> tuple[float, float, float, float]:
    """Return (product mails/s first to last, seconds from start to the last mail, bare mails/s, first mail s)."""
    sink = Sink()
    try:
        mail_env = {**env, "TRACKER_SMTP_URL": f"smtp://127.0.0.1:{sink.port}", "TRACKER_SURVEY_DELAY": "60"}
        settings = bench_settings(mail_env)
        due_surveys(store, settings, args.surveys)
        bare = [bare_smtp(sink, args.surveys)]
        sink.reset()
        start = time.time()
        worker = start_tracker(mail_env, "worker", "--loglevel", "WARNING")
        beat = start_tracker(mail_env, "beat", "--loglevel", "WARNING")
        try:
            if not wait_until(lambda: sink.count.value >= args.surveys, timeout=args.survey_timeout, interval=0.2):
                print(f"  surveys: only {sink.count.value:,} of {args.surveys:,} mails within {args.survey_timeout} s")
        finally:
            stop_process(beat)
            stop_process(worker)
        sent = sink.count.value
        first, last = sink.first.value, sink.last.value
        bare.append(bare_smtp(sink, args.surveys))
    finally:
        sink.stop()
    rate = (sent - 1) / (last - first) if sent > 1 and last > first else 0.0
    return rate, last - start, max(bare), first - start


# --- main -------------------------------------------------------------------------------------------------

def card_data(store: Store, settings: Settings, customers: int) -> list[str]:
    """Fill customers the scale run's way (5 tickets, 2 orders, 5 answers each); return their emails."""
    from scale import fill

    fill(store, settings, customers, int(time.time() * 1000))
    return [f"c{n}@example.no" for n in range(customers)]


def ratio_row(what: str, baseline: float, product: float, unit: str) -> tuple[str, str, str, str]:
    return what, f"{baseline:,.0f} {unit}", f"{product:,.0f} {unit}", f"{product / baseline:.0%}"


def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as folder, redis_server(Path(folder)) as url:
        env = bench_env(url, TRACKER_API_RATE_LIMIT="0", TRACKER_LOG_LEVEL="WARNING")
        settings = bench_settings(env)
        store = Store.from_url(url)
        emails = card_data(store, settings, args.customers)
        key = store.create_key("bench-http")
        run = Run(args, env, store)
        print(f"HTTP run at {git_commit()}, {datetime.now(tz=UTC):%Y-%m-%d %H:%M} UTC; gunicorn {args.workers} "
              f"workers x {args.threads} threads ({args.worker_class}); load: "
              f"{'wrk' if args.wrk else f'{args.load_processes} Python processes'} x {args.connections} connections, "
              f"{args.seconds:g} s a round, best of {args.rounds}", flush=True)
        if args.grid:
            grid(run, env, emails, key)
            return
        with servers(env, args.workers, args.threads, args.worker_class) as (product, bare):
            # First, while the log is empty: the receiver's rounds below leave events no worker applies.
            applied, base, trail = run.applied(product, bare)
            ours, theirs = run.receiver(product, bare)
            run.rows.append(ratio_row("receiver: signed webhook POST vs bare Flask POST", theirs.rate, ours.rate,
                                      "req/s"))
            run.rows.append(ratio_row("accepted and applied by a worker vs bare POST", base.rate, applied, "events/s"))
            card = run.card(product, bare, emails, key)
            run.rows.append(ratio_row("score card GET vs bare GET of one hash", card["hash"].rate, card["card"].rate,
                                      "req/s"))
            half = card["card half"]
            base_half = card["hash half"]
            run.rows.append((f"p50 / p99 at half load ({half.rate:,.0f} req/s)",
                             f"{base_half.percentile(0.5) * 1000:.1f} / {base_half.percentile(0.99) * 1000:.1f} ms",
                             f"{half.percentile(0.5) * 1000:.1f} / {half.percentile(0.99) * 1000:.1f} ms", ""))
            for name, result in (("receiver", ours), ("card", card["card"]), ("card at half load", half)):
                if any(n for status, n in result.statuses.items() if status not in (200, 202)):
                    print(f"  {name}: {statuses(result)}")
        if args.surveys:
            rate, total, bare_rate, first = surveys(args, env, store)
            run.rows.append(ratio_row(f"{args.surveys:,} surveys due at once vs bare smtplib loop", bare_rate, rate,
                                      "mails/s"))
            run.rows.append((f"  (first mail {first:.1f} s after start, last {total:.1f} s)", "", "", ""))
        print(f"  the worker applied the last event {trail:.2f} s after the last webhook was accepted")
        width = max(len(r[0]) for r in run.rows)
        print(f"{'what':<{width}}  {'baseline':>16}  {'product':>16}  {'ratio':>6}")
        for what, baseline, product_, ratio in run.rows:
            print(f"{what:<{width}}  {baseline:>16}  {product_:>16}  {ratio:>6}")


def grid(run: Run, env: dict[str, str], emails: list[str], key: str) -> None:
    """Measure the receiver and the card under several gunicorn settings, each against its own bare app."""
    print(f"{'workers':>7} {'threads':>7} {'class':>8} {'receiver':>10} {'bare POST':>10} {'ratio':>6} "
          f"{'card':>8} {'bare GET':>9} {'ratio':>6} {'card p99 at half':>17}")
    for workers, threads, worker_class in run.args.settings or SETTINGS_GRID:
        with servers(env, workers, threads, worker_class) as (product, bare):
            ours, theirs = run.receiver(product, bare)
            card = run.card(product, bare, emails, key)
        print(f"{workers:>7} {threads:>7} {worker_class:>8} {ours.rate:>10,.0f} {theirs.rate:>10,.0f} "
              f"{ours.rate / theirs.rate:>6.0%} {card['card'].rate:>8,.0f} {card['hash'].rate:>9,.0f} "
              f"{card['card'].rate / card['hash'].rate:>6.0%} {card['card half'].percentile(0.99) * 1000:>14.1f} ms",
              flush=True)


def grid_setting(text: str) -> tuple[int, int, str]:
    size, _, worker_class = text.partition(":")
    workers, _, threads = size.partition("x")
    return int(workers), int(threads), worker_class or "gthread"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        parser = argparse.ArgumentParser(prog="bench/http_run.py serve")
        parser.add_argument("app", choices=("product", "bare"))
        parser.add_argument("--workers", type=int, required=True)
        parser.add_argument("--threads", type=int, required=True)
        parser.add_argument("--worker-class", required=True)
        serve(parser.parse_args(sys.argv[2:]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="length of one load round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each load, baseline and product in turn")
    parser.add_argument("--customers", type=int, default=1000, help="customers filled for the score card")
    parser.add_argument("--applied", type=int, default=5000, help="webhooks for the accepted-and-applied run")
    parser.add_argument("--surveys", type=int, default=10_000, help="surveys due at once (0: skip)")
    parser.add_argument("--survey-timeout", type=float, default=900)
    parser.add_argument("--worker-start", type=float, default=3.0, help="seconds given a worker to start")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (4: the measured choice)")
    parser.add_argument("--threads", type=int, default=0, help="threads per worker (0: tracker web's share)")
    parser.add_argument("--worker-class", default=WEB_WORKER_CLASS)
    parser.add_argument("--load-processes", type=int, default=1)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--grid", action="store_true", help="only receiver and card, under each SETTINGS_GRID")
    parser.add_argument("--settings", type=grid_setting, nargs="+", metavar="WORKERSxTHREADS[:CLASS]",
                        help="the grid's settings instead of SETTINGS_GRID, e.g. 2x32 4x16 4x1:sync")
    parser.add_argument("--python-load", action="store_true", help="the Python load generator even with wrk installed")
    args = parser.parse_args()
    args.wrk = wrk_available() and not args.python_load
    args.threads = args.threads or threads_per_worker(args.workers)
    run(args)


if __name__ == "__main__":
    main()
