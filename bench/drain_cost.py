"""What a kicked drain costs per event when it finds only a few: the worker's CPU, Redis's CPU and round trips.

    .venv/bin/python bench/drain_cost.py [--events N] [--per-drain K [K ...]] [--rounds R] [--baseline PATH]

Under a steady stream of webhooks the worker keeps up, so each kicked drain finds a few events in each shard of
its group, not a batch of 200: what a drain spends per step (leases, cursors, last looks) is spread over few
events. Each round appends N solved tickets (a new customer each, as bench/http_run.py's webhooks) K at a time,
as the receiver does, and after each K drains every kick group as the `tracker.drain_kicked` task does
(ingest.drain_group), in this process, against a redis-server of its own; printed per applied event: this
process's CPU during the drains, Redis's CPU (INFO cpu: the appends' too) and the drains' round trips.

--baseline PATH: also run the rounds with the code of another checkout (a `git worktree add` of an earlier
commit), taking turns round by round: the machine's speed moves run to run, so only figures taken in turn compare.
"""

from __future__ import annotations

import argparse
import json
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

WARM = 300  # events applied before the measured ones, so that entities, scripts and connections exist


def redis_cpu(client: Any) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def one_round(events: int, per_drain: int) -> dict[str, Any]:
    """Append and drain events per_drain at a time on a Redis of its own; return the drains' costs per event."""
    from http_run import solved

    from tracker.cli.migrate import known_sources
    from tracker.ingest import apply as ingest
    from tracker.ingest.replay import replay_file
    from tracker.store import Store
    from tracker.store.log import SHARDS, kick_group

    groups = sorted({kick_group(shard) for shard in SHARDS})
    with tempfile.TemporaryDirectory() as folder, redis_server(Path(folder)) as url:
        settings = bench_settings(bench_env(url))
        store = Store.from_url(url)
        store.keep_risk_ranking(settings.at_risk_score)  # as beat does on an empty Redis: the writers keep it

        def run(tag: str, count: int, counter: Any) -> tuple[int, float, int]:
            applied, cpu, trips = 0, 0.0, 0
            for start in range(0, count, per_drain):
                lines = [json.dumps(solved(n, tag)).encode() for n in range(start, min(count, start + per_drain))]
                report = replay_file(store, settings, lines, "standard", known_sources())
                if report.errors:
                    raise SystemExit(f"bench: the generated events do not replay: {report.errors[:3]}")
                began, sent = time.process_time(), counter.count
                for group in groups:
                    if store.claim_kick(group):  # as the web does before it sends the group's task
                        applied += ingest.drain_group(store, settings, "bench", group)[0]
                cpu, trips = cpu + time.process_time() - began, trips + counter.count - sent
            return applied, cpu, trips

        with RoundTrips.installed() as counter:
            run("warm", WARM, counter)
            server = redis_cpu(store.redis)
            applied, cpu, trips = run("measured", events, counter)
            server = redis_cpu(store.redis) - server
        if applied != events:
            raise SystemExit(f"bench: {applied:,} of {events:,} events applied")
        return {"commit": git_commit(), "cpu_us": cpu / applied * 1e6, "redis_us": server / applied * 1e6,
                "trips": trips / applied}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000, help="events applied per round and size")
    parser.add_argument("--per-drain", type=int, nargs="+", default=[4, 16, 64], help="events appended per drain")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", metavar="PATH", help="another checkout to take turns with")
    parser.add_argument("--one-round", action="store_true", help=argparse.SUPPRESS)  # one round, as JSON
    parser.add_argument("--root", help=argparse.SUPPRESS)  # the checkout a round runs (read before the imports)
    args = parser.parse_args()
    if args.one_round:
        print(json.dumps(one_round(args.events, args.per_drain[0])))
        return
    from common import take_turns  # this checkout's: a baseline's round imports its own common

    print(f"kicked drains, {args.events:,} events a round, {args.rounds} rounds taken in turn; medians per event")
    fields = (("cpu_us", "worker CPU", "{:,.0f} µs"), ("redis_us", "Redis CPU", "{:,.0f} µs"),
              ("trips", "round trips", "{:.2f}"))
    print(f"{'':<28}" + "".join(f"{title:>14}" for _, title, _ in fields))
    for per_drain in args.per_drain:
        rows = take_turns(__file__, args.baseline, args.rounds,
                          ["--events", str(args.events), "--per-drain", str(per_drain)])
        for name, found in rows.items():
            medians = (form.format(statistics.median(r[key] for r in found)) for key, _, form in fields)
            label = f"{name} {found[0]['commit']}, {per_drain}/drain"
            print(f"{label:<28}" + "".join(f"{median:>14}" for median in medians), flush=True)


if __name__ == "__main__":
    main()
