"""The receiver's Python cost per request, in this process: signed POST /webhooks/standard against a bare Flask POST.

    .venv/bin/python bench/receiver_cost.py [--requests N] [--rounds R] [--profile | --calls] [--source zendesk]

Both apps get the same requests as WSGI environs (built beforehand, called through app.wsgi_app as gunicorn
calls it), against a redis-server of their own; rounds alternate and the best round of each is compared. The
product app is the one `tracker web` serves (tracker.cli.serve.web_app: the real Celery enqueue, warmed up).
--profile prints cProfile's top functions of one product round instead, --calls the Python function calls per
request of each (work counted, not timed: the machine may be loaded). Also printed: Redis round trips per
request. A figure of Python cost, not of throughput over HTTP (that is bench/http_run.py).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RoundTrips, bench_env, bench_settings, git_commit, redis_server
from http_run import bare_app, solved
from werkzeug.test import EnvironBuilder

from tests.signing import signed
from tests.support import zendesk_body
from tracker.logs import configure_logging

Environ = dict[str, Any]


def environs(path: str, source: str, tag: str, count: int) -> list[Environ]:
    """Return count WSGI environs of signed webhook requests, each a new delivery (the body's bytes kept apart)."""
    built = []
    for n in range(count):
        if source == "zendesk":
            body = json.dumps(zendesk_body(f"{tag}-{n}", f"{tag}-{n}@example.no")).encode()
        else:
            body = json.dumps(solved(n, tag)).encode()
        headers, query = signed(source, body, headers={"webhook-id": f"msg-{tag}-{n}"})
        builder = EnvironBuilder(path=path, method="POST", headers=headers, data=body, query_string=query,
                                 content_type="application/json")
        environ = builder.get_environ()
        environ["bench.body"] = body
        built.append(environ)
    return built


def call_all(app: Any, requests: list[Environ]) -> dict[str, int]:
    """Call the app once per environ as a WSGI server would; return the count of each status."""
    statuses: dict[str, int] = {}
    status_of: list[str] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        status_of.append(status)

    for environ in requests:
        environ = dict(environ)
        environ["wsgi.input"] = io.BytesIO(environ["bench.body"])
        for _chunk in app(environ, start_response):
            pass
        status = status_of.pop()
        statuses[status] = statuses.get(status, 0) + 1
    return statuses


def counted_calls(app: Any, requests: list[Environ]) -> tuple[int, int]:
    """Call the app once per environ; return the Python function calls (cProfile) and Redis round trips made."""
    profile = cProfile.Profile()
    with RoundTrips.installed() as counter:
        before = counter.count
        profile.enable()
        call_all(app, requests)
        profile.disable()
        trips = counter.count - before
    return pstats.Stats(profile).total_calls, trips  # type: ignore[attr-defined]


def timed(run: Callable[[], Any]) -> tuple[float, float, Any]:
    """Return the wall time and this process's CPU time a run took, and its result."""
    start, cpu = time.perf_counter(), time.process_time()
    result = run()
    return time.perf_counter() - start, time.process_time() - cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--source", default="standard")
    parser.add_argument("--profile", action="store_true", help="cProfile one product round")
    parser.add_argument("--top", type=int, default=45)
    parser.add_argument("--calls", action="store_true", help="count Python calls per request (cProfile), no timing")
    args = parser.parse_args()
    from tracker.cli.serve import web_app

    with tempfile.TemporaryDirectory() as folder, redis_server(Path(folder)) as url:
        settings = bench_settings(bench_env(url))
        configure_logging(settings.log_level)
        product, bare = web_app(settings), bare_app(settings)
        path = f"/webhooks/{args.source}"
        call_all(product.wsgi_app, environs(path, args.source, "warm", 50))
        call_all(bare.wsgi_app, environs("/hook", args.source, "warm", 50))
        if args.calls:
            # Kicks (a Celery send each, at most one per shard per second) depend on time, not on requests: counted
            # apart, so that the count of calls per request does not depend on how loaded the machine is.
            kicks: list[Any] = []
            product.extensions["tracker"].enqueue = lambda task, *task_args: kicks.append(task)
            for name, app, path_ in (("bare POST", bare.wsgi_app, "/hook"), ("receiver", product.wsgi_app, path)):
                requests = environs(path_, args.source, f"calls-{name[0]}", args.requests)
                total, trips = counted_calls(app, requests)
                kicked = f", {len(kicks)} kicks" if kicks else ""
                print(f"{name:>10}: {total / args.requests:7.1f} Python calls/request, "
                      f"{trips / args.requests:.2f} Redis round trips/request{kicked}")
            return
        if args.profile:
            product.extensions["tracker"].enqueue = lambda task, *task_args: None  # kicks: see --calls
            requests = environs(path, args.source, "prof", args.requests)
            profile = cProfile.Profile(time.process_time)  # CPU time: waits on Redis are not ours
            profile.enable()
            statuses = call_all(product.wsgi_app, requests)
            profile.disable()
            print(statuses)
            stats = pstats.Stats(profile)
            stats.sort_stats("cumulative").print_stats(args.top)
            stats.sort_stats("tottime").print_stats(args.top)
            return
        ours: list[float] = []
        theirs: list[float] = []
        ours_cpu: list[float] = []
        theirs_cpu: list[float] = []
        trips = 0
        for round_ in range(args.rounds):
            mine = environs(path, args.source, f"r{round_}", args.requests)
            base = environs("/hook", args.source, f"b{round_}", args.requests)
            runs = [(bare.wsgi_app, base, theirs, theirs_cpu), (product.wsgi_app, mine, ours, ours_cpu)]
            for app, requests, into, into_cpu in (runs if round_ % 2 == 0 else runs[::-1]):
                with RoundTrips.installed() as counter:
                    before = counter.count
                    seconds, cpu, statuses = timed(lambda app=app, requests=requests: call_all(app, requests))
                    if app is product.wsgi_app:
                        trips = counter.count - before
                into.append(seconds / args.requests)
                into_cpu.append(cpu / args.requests)
                if app is product.wsgi_app and set(statuses) != {"202 ACCEPTED"}:
                    raise SystemExit(f"unexpected answers: {statuses}")
        print(f"commit {git_commit()}  source {args.source}  {args.requests} requests x {args.rounds} rounds")
        for what, mine_, base_ in (("wall", ours, theirs), ("CPU", ours_cpu, theirs_cpu)):
            rounds = f"bare: {' '.join(f'{t * 1e6:.0f}' for t in base_)}; receiver: " \
                     f"{' '.join(f'{t * 1e6:.0f}' for t in mine_)}"
            print(f"{what:>4}: bare POST {min(base_) * 1e6:7.1f} us/request, receiver {min(mine_) * 1e6:7.1f} "
                  f"us/request, ratio {min(base_) / min(mine_):4.0%}   (rounds, {rounds})")
        print(f"Redis round trips per receiver request: {trips / args.requests:.2f}")


if __name__ == "__main__":
    main()
