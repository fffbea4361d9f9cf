"""The score card's Python cost per request, in this process: GET /api/v1/customers/<email> against a bare Flask GET.

    .venv/bin/python bench/card_cost.py [--requests N] [--rounds R] [--calls]

Both apps get the same number of requests as WSGI environs (built beforehand, called through app.wsgi_app as
gunicorn calls it), against a redis-server of their own filled with 200 customers the scale run's way; the card's
requests carry an API key (the rate limit off, as bench/http_run.py runs it), the bare app reads the customer's
profile hash. Rounds alternate and the best round of each is compared. --calls prints the Python function calls per
request of each instead (work counted, not timed: the machine may be loaded). Also printed: Redis round trips per
request. A figure of Python cost, not of throughput over HTTP (that is bench/http_run.py).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import bench_env, bench_settings, git_commit, redis_server
from http_run import bare_app, card_data
from receiver_cost import call_all, counted_calls, timed
from werkzeug.test import EnvironBuilder

from tracker.logs import configure_logging
from tracker.store import Store

CUSTOMERS = 200


def environs(paths: list[str], headers: dict[str, str]) -> list[dict[str, Any]]:
    """Return a GET environ per path (an empty body each, as call_all feeds it)."""
    built = []
    for path in paths:
        environ = EnvironBuilder(path=path, method="GET", headers=list(headers.items())).get_environ()
        environ["bench.body"] = b""
        built.append(environ)
    return built


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", action="store_true", help="count Python calls per request (cProfile), no timing")
    args = parser.parse_args()
    from tracker.cli.serve import web_app

    with tempfile.TemporaryDirectory() as folder, redis_server(Path(folder)) as url:
        settings = bench_settings(bench_env(url, TRACKER_API_RATE_LIMIT="0", TRACKER_LOG_LEVEL="WARNING"))
        configure_logging(settings.log_level)
        store = Store.from_url(url)
        emails = card_data(store, settings, CUSTOMERS)
        key = store.create_key("bench-card")
        product, bare = web_app(settings), bare_app(settings)
        asked = [emails[n % CUSTOMERS] for n in range(args.requests)]
        mine = environs([f"/api/v1/customers/{email}" for email in asked], {"Authorization": f"Bearer {key}"})
        base = environs([f"/hash/{email}" for email in asked], {})
        for app, requests in ((product.wsgi_app, mine), (bare.wsgi_app, base)):
            statuses = call_all(app, requests[:50])  # warm: the key remembered, the connections made
            if set(statuses) != {"200 OK"}:
                raise SystemExit(f"unexpected answers: {statuses}")
        print(f"commit {git_commit()}  {args.requests} requests x {args.rounds} rounds, {CUSTOMERS} customers")
        if args.calls:
            for name, app, requests in (("bare GET", bare.wsgi_app, base), ("card", product.wsgi_app, mine)):
                total, trips = counted_calls(app, requests)
                print(f"{name:>9}: {total / args.requests:7.1f} Python calls/request, "
                      f"{trips / args.requests:.2f} Redis round trips/request")
            return
        cpu: dict[str, list[float]] = {"bare GET": [], "card": []}
        runs = [("bare GET", bare.wsgi_app, base), ("card", product.wsgi_app, mine)]
        for round_ in range(args.rounds):
            for name, app, requests in (runs if round_ % 2 == 0 else runs[::-1]):
                _wall, used, statuses = timed(lambda app=app, requests=requests: call_all(app, requests))
                if set(statuses) != {"200 OK"}:
                    raise SystemExit(f"unexpected answers: {statuses}")
                cpu[name].append(used / args.requests)
        rounds = "; ".join(f"{name}: {' '.join(f'{t * 1e6:.0f}' for t in times)}" for name, times in cpu.items())
        print(f"CPU: bare GET {min(cpu['bare GET']) * 1e6:7.1f} us/request, card {min(cpu['card']) * 1e6:7.1f} "
              f"us/request, ratio {min(cpu['bare GET']) / min(cpu['card']):4.0%}   (rounds, {rounds})")


if __name__ == "__main__":
    main()
