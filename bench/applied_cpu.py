"""Where an accepted-and-applied webhook's CPU goes: each process's CPU per event over real processes.

    .venv/bin/python bench/applied_cpu.py [--webhooks N] [--rounds R] [--baseline PATH]

bench/http_run.py's accepted-and-applied row, alone: a real gunicorn (`tracker web`'s settings), `tracker worker`
and `tracker beat` against a redis-server of their own; each round posts N signed webhooks (a new customer
each, bench/load.py's client) and waits until the last is applied. Printed per round: events a second from the
first POST to the last event applied, and the CPU time per event of the web (every gunicorn process), the
worker (main process and pool), beat and Redis, read before and after (psutil), and the Celery tasks sent
(the broker's LPUSHes: the drain kicks, and beat's few).

--baseline PATH: also run rounds with the code of another checkout (a `git worktree add` of an earlier commit),
taking turns round by round: the machine's speed moves run to run, so only figures taken in turn compare.
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

GROUPS = ("web", "worker", "beat", "redis")


def tree_cpu(pid: int) -> float:
    """Return the CPU time (user and system, s) of a process and its live descendants."""
    import psutil

    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def one_round(webhooks: int) -> dict[str, Any]:
    """Start the processes, post the webhooks until applied; return the rate and each process's CPU per event."""
    import http_run
    from common import bench_env, git_commit, redis_server

    from tracker.store import Store, keys

    with tempfile.TemporaryDirectory() as folder, redis_server(Path(folder)) as url:
        env = bench_env(url, TRACKER_API_RATE_LIMIT="0", TRACKER_LOG_LEVEL="WARNING")
        store = Store.from_url(url)
        args = argparse.Namespace(wrk=False, load_processes=1, connections=16, seconds=4.0, applied=webhooks)
        run = http_run.Run(args, env, store)
        with http_run.servers(env, 4, 16, "gthread") as (product, _bare):
            worker = http_run.start_tracker(env, "worker", "--loglevel", "WARNING")
            beat = http_run.start_tracker(env, "beat", "--loglevel", "WARNING")
            try:
                warm, _ = http_run.webhooks(run.tag(), 200)  # connections opened, scripts loaded, the worker up
                run.load(product.port, warm, count=len(warm), seconds=60)
                if not http_run.wait_until(lambda: store.lag()[1:] == (0, 0), timeout=60):
                    raise SystemExit("bench: the worker did not apply the warm-up webhooks")
                tag = run.tag()
                mine, _ = http_run.webhooks(tag, webhooks)
                profiles = [keys.customer(f"{tag}-{n}@example.no", "profile") for n in range(webhooks)]
                pids = {"web": product.process.pid, "worker": worker.pid, "beat": beat.pid,
                        "redis": int(store.redis.info("server")["process_id"])}
                before = {name: tree_cpu(pid) for name, pid in pids.items()}
                store.redis.config_resetstat()
                start = time.perf_counter()
                posted = run.load(product.port, mine, count=webhooks, seconds=600)
                if not http_run.wait_until(lambda: http_run.existing(store, profiles) >= webhooks, timeout=600):
                    raise SystemExit(f"bench: only {http_run.existing(store, profiles):,} events applied")
                seconds = time.perf_counter() - start
                after = {name: tree_cpu(pid) for name, pid in pids.items()}
                tasks = int(store.redis.info("commandstats").get("cmdstat_lpush", {}).get("calls", 0))
            finally:
                http_run.stop_process(beat)
                http_run.stop_process(worker)
        if posted.statuses.get(202) != webhooks:
            raise SystemExit(f"bench: the webhooks were answered {dict(posted.statuses)}")
    row: dict[str, Any] = {"commit": git_commit(), "rate": webhooks / seconds, "tasks": tasks}
    row.update({name: (after[name] - before[name]) / webhooks * 1e6 for name in GROUPS})
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--webhooks", type=int, default=5000, help="webhooks posted a round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--baseline", metavar="PATH", help="another checkout to take turns with")
    parser.add_argument("--one-round", action="store_true", help=argparse.SUPPRESS)  # one round, as JSON
    parser.add_argument("--root", help=argparse.SUPPRESS)  # the checkout a round runs (read before the imports)
    args = parser.parse_args()
    if args.one_round:
        print(json.dumps(one_round(args.webhooks)))
        return
    from common import take_turns  # this checkout's: a baseline's round imports its own common

    rows = take_turns(__file__, args.baseline, args.rounds, ["--webhooks", str(args.webhooks)])
    print(f"accepted and applied, {args.webhooks:,} webhooks a round, {args.rounds} rounds taken in turn; per event")
    print(f"{'':<22}{'events/s':>10}{'web CPU':>12}{'worker CPU':>12}{'beat CPU':>10}{'Redis CPU':>11}{'tasks':>7}")
    for name, found in rows.items():
        label = f"{name} {found[0]['commit']}"
        for n, r in enumerate(found):
            print(f"{label if n == 0 else '':<22}{r['rate']:>10,.0f}{r['web']:>9,.0f} µs{r['worker']:>9,.0f} µs"
                  f"{r['beat']:>7,.0f} µs{r['redis']:>8,.0f} µs{r['tasks']:>7,}")
        median = {key: statistics.median(r[key] for r in found) for key in ("rate", *GROUPS, "tasks")}
        print(f"{'  median':<22}{median['rate']:>10,.0f}{median['web']:>9,.0f} µs{median['worker']:>9,.0f} µs"
              f"{median['beat']:>7,.0f} µs{median['redis']:>8,.0f} µs{median['tasks']:>7,.0f}")


if __name__ == "__main__":
    main()
