"""What applying the scale run's events costs, per event, in this process: the worker's CPU, Redis's CPU, round trips.

    .venv/bin/python bench/apply_cost.py [--customers N] [--rounds R] [--calls] [--baseline PATH]

Each round replays N customers' events (bench/scale.py's: 5 solved tickets, 2 orders, 5 answers each) into the
event log of a redis-server of its own, as `tracker replay` does, then applies them as the worker's drain does
(tracker.ingest.apply.drain, its outbox forwarding included), and prints for the drain alone this process's CPU
time, the wall time, Redis's own CPU time (INFO cpu) and the round trips per event. The answers' outbox
forwarding (every entity's sums and rollups, crossed by the survey's other dimensions) is most of it.

--baseline PATH: also run the same rounds with the code of another checkout (a `git worktree add` of an earlier
commit; this script runs its tracker/ and bench/scale.py), taking turns round by round, and print both: the
machine's speed moves by a third run to run, so only figures taken in turn compare. --calls counts the Python
function calls per event instead (cProfile): work, not time, so it does not depend on how loaded the machine is.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _root() -> Path:
    """Return the checkout whose code a round runs: --root's (a baseline's round), else this one."""
    if "--root" in sys.argv[:-1]:
        return Path(sys.argv[sys.argv.index("--root") + 1]).resolve()
    return Path(__file__).resolve().parent.parent


sys.path[:0] = [str(_root() / "bench"), str(_root())]

from common import RoundTrips, bench_env, bench_settings, git_commit, redis_server  # noqa: E402

WARM = 200  # customers applied before the measured ones, so that entities, scripts and connections exist


def redis_cpu(client: Any) -> float:
    """Return the CPU time (user and system, s) the redis-server has used so far."""
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def one_round(customers: int, calls: bool) -> dict[str, Any]:
    """Replay and apply customers' events on a Redis of its own; return the drain's costs per event."""
    import scale

    from tracker.cli.migrate import known_sources
    from tracker.ingest.replay import replay_file
    from tracker.store import Store

    with tempfile.TemporaryDirectory() as folder, redis_server(Path(folder)) as url:
        settings = bench_settings(bench_env(url))
        store = Store.from_url(url)
        store.keep_risk_ranking(settings.at_risk_score)  # as beat does on an empty Redis: the writers keep it
        now_ms = int(time.time() * 1000)
        scale.fill(store, settings, WARM, now_ms)
        lines = [json.dumps(event).encode() for n in range(WARM, WARM + customers)
                 for event in scale.customer_events(n, now_ms)]
        report = replay_file(store, settings, lines, "standard", known_sources())
        if report.errors:
            raise SystemExit(f"bench: the generated events do not replay: {report.errors[:3]}")
        profile = cProfile.Profile()
        with RoundTrips.installed() as counter:
            trips, cpu, wall, server = counter.count, time.process_time(), time.perf_counter(), redis_cpu(store.redis)
            if calls:
                profile.enable()
            applied = scale.drain_all(store, settings)
            profile.disable()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            server, trips = redis_cpu(store.redis) - server, counter.count - trips
        found: dict[str, Any] = {"commit": git_commit(), "events": applied, "cpu_us": cpu / applied * 1e6,
                                 "wall_us": wall / applied * 1e6, "redis_us": server / applied * 1e6,
                                 "trips": trips / applied}
        if calls:
            found["calls"] = pstats.Stats(profile).total_calls / applied  # type: ignore[attr-defined]
        return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=500, help="customers applied per round (12 events each)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", action="store_true", help="count Python calls per event (cProfile), no timing")
    parser.add_argument("--baseline", metavar="PATH", help="another checkout to take turns with")
    parser.add_argument("--one-round", action="store_true", help=argparse.SUPPRESS)  # one round, as JSON
    parser.add_argument("--root", help=argparse.SUPPRESS)  # the checkout a round runs (read before the imports)
    args = parser.parse_args()
    if args.one_round:
        print(json.dumps(one_round(args.customers, args.calls)))
        return
    from common import take_turns  # this checkout's: a baseline's round imports its own common

    rows = take_turns(__file__, args.baseline, args.rounds,
                      ["--customers", str(args.customers), *(["--calls"] if args.calls else [])])
    print(f"apply cost, {args.customers} customers ({args.customers * 12:,} events) a round, "
          f"{args.rounds} rounds taken in turn; medians per applied event")
    fields = (("calls", "Python calls", "{:,.0f}"),) if args.calls else (
        ("cpu_us", "worker CPU", "{:,.0f} µs"), ("wall_us", "wall", "{:,.0f} µs"),
        ("redis_us", "Redis CPU", "{:,.0f} µs"), ("trips", "round trips", "{:.2f}"))
    print(f"{'':<20}" + "".join(f"{title:>16}" for _, title, _ in fields))
    for name, found in rows.items():
        medians = (form.format(statistics.median(r[key] for r in found)) for key, _, form in fields)
        print(f"{name + ' ' + found[0]['commit']:<20}" + "".join(f"{median:>16}" for median in medians))


if __name__ == "__main__":
    main()
