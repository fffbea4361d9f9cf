"""Scale run: fill N customers through the product's bulk path, then print bytes per customer and each read's cost.

    .venv/bin/python bench/scale.py --customers 20000      # `make bench` runs it at this size

Each customer gets 5 solved tickets, 2 orders and 5 answers (issue 9's table), as standard events in a
JSON-lines file replayed the way `tracker replay` does (tracker.ingest.replay.replay_file appends each
event to the event log) and applied the way the worker does (tracker.ingest.apply.drain). Nothing is
written to Redis around the product.

Memory is Redis' own `used_memory` after the fill minus before it, divided by N:
- fresh: right after the fill, with every log entry, ticket and delivery id still held;
- steady: after the product's log and notice trims have run with its clock moved past TRACKER_LOG_RETENTION_DAYS and
  every key that carries a TTL is gone (deleted here, as Redis would once the TTL ran out): what a customer
  who has been quiet for longer than every TTL and the log retention costs.
Each also says how much of it is Redis's own hash table of keys (common.keyspace_table), which Redis sizes in powers
of two: two runs whose key counts fall either side of one differ by hundreds of bytes a customer that no layout
change made.

Then the dispatcher opens the recovery cases of the unsatisfied answers (its cases target alone, as beat runs it)
and the run says what they take a case and what one filter's case numbers cost read from its label against counted
from every case; the steady bytes hold the cases, the fresh ones none.

Reads go through the app in this process (Flask's test client: server time, no network): the dashboard,
the 90-day summary, customers?sort=value, the at-risk listing, the agents list, lists, the summary and the
dashboard filtered by another dimension (SPEC §12), and one score card. For each
it prints the median latency of a few runs, the commands Redis executed (INFO commandstats, commands inside
scripts included) and the round trips the app made.
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import os
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    RoundTrips,
    bench_env,
    bench_settings,
    commands_run,
    git_commit,
    keyspace_table,
    redis_server,
    used_memory,
)

from tracker.cases.labels import keep_case_labels
from tracker.cases.stats import case_numbers
from tracker.cases.target import case_targets
from tracker.cli.migrate import known_sources
from tracker.config import Settings
from tracker.ingest import apply as ingest
from tracker.ingest.replay import replay_file
from tracker.notify import dispatch
from tracker.notify.expiry import settle_expired
from tracker.scores.summary import Facets, case_facets
from tracker.store import Store, keys
from tracker.web.app import create_app

DAY_MS = 86_400_000
AGENTS = 200  # agent a-0 has no name: the agents list must not look names up customer by customer
TEAMS = ("billing", "shipping", "returns", "tech", "sales", "vip", "b2b", "general")
BRANDS = ("acme", "globex", "initech")
CHANNELS = ("email", "email", "chat", "phone")
TAGS = ("refund", "shipping", "vip", "bug", "invoice", "login")
CHUNK = 500  # customers per replayed file chunk (6,000 events)
# Three comments in eight are longer than Redis's default compact-hash limit of 64 bytes, as customers write them.
COMMENTS = ("Quick and friendly", "Took too long", "Solved it, thanks", "Still broken", "Great help!",
            "The agent was friendly, but it took three days before anyone answered my question about the refund.",
            "Second time I had to explain the whole problem from the start; please read the earlier messages.",
            "Fixed quickly, and the follow-up mail explained what had gone wrong with my account. Thank you!")


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def customer_events(n: int, now_ms: int) -> Iterator[dict[str, Any]]:
    """Yield one customer's 12 events in the order a helpdesk and a shop would send them."""
    rng = random.Random(n)
    email, cid = f"c{n}@example.no", f"cid-{n}"
    person = {"id": cid, "email": email, "name": f"Customer {n}", "locale": ("nb", "en", "de")[n % 3]}
    for k in range(2):
        at = now_ms - rng.randint(1, 80) * DAY_MS - rng.randint(0, DAY_MS)
        yield {"type": "order.created", "id": f"o-{n}-{k}", "occurred_at": iso(at), "customer": person,
               "order": {"id": f"O-{n}-{k}", "total": f"{rng.randint(100, 500000) / 100:.2f}", "currency": "NOK",
                         "status": "open"}}
    for k in range(5):
        solved = now_ms - rng.randint(2, 85) * DAY_MS - rng.randint(0, DAY_MS)
        agent_n = rng.randrange(AGENTS)
        agent = {"id": f"a-{agent_n}"} | ({"name": f"Agent {agent_n}"} if agent_n else {})
        # The first ticket's subject is longer than 64 bytes, as many are.
        subject = f"Question {k} about order" if k else (f"Order O-{n}-0 arrived damaged, and the replacement "
                                                          "you promised never came")
        ticket = {"id": f"T-{n}-{k}", "subject": subject, "status": "solved",
                  "channel": rng.choice(CHANNELS), "team": rng.choice(TEAMS), "brand": BRANDS[n % len(BRANDS)],
                  "agent": agent, "tags": rng.sample(TAGS, rng.randint(0, 2))}
        yield {"type": "ticket.solved", "id": f"t-{n}-{k}", "occurred_at": iso(solved), "customer": person,
               "ticket": ticket}
        rating = rng.choices((1, 2, 3, 4, 5), weights=(5, 5, 10, 30, 50))[0]
        answer: dict[str, Any] = {"scale": "csat5", "rating": rating, "solved_at": iso(solved)}
        if k == 0:
            answer["comment"] = COMMENTS[n % len(COMMENTS)]
        yield {"type": "survey.answered", "id": f"a-{n}-{k}", "occurred_at": iso(solved + 3_600_000 + k),
               "customer": {"id": cid, "email": email}, "ticket": {"id": ticket["id"]}, "answer": answer}


def drain_all(store: Store, settings: Settings) -> int:
    """Apply everything in the log as a worker would, until nothing is left."""
    applied, more = 0, True
    while more:
        done, left = ingest.drain(store, settings, f"bench-{os.getpid()}", budget_s=600)
        applied, more = applied + done, bool(left)
    return applied


def fill(store: Store, settings: Settings, customers: int, now_ms: int, processes: int = 1) -> tuple[int, float]:
    """Replay every customer's events chunk by chunk and apply each chunk, in processes that each take every
    processes-th chunk (any number of appliers is safe: the log has one per shard at a time); return
    (events appended, seconds)."""
    start = time.perf_counter()
    if processes <= 1:
        events = _fill_part(settings, customers, now_ms, 0, 1)
        return events, time.perf_counter() - start
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(processes) as pool:
        parts = [pool.apply_async(_fill_part, (settings, customers, now_ms, part, processes))
                 for part in range(processes)]
        events = sum(part.get() for part in parts)
    drain_all(store, settings)  # whatever a process left to another that had finished already
    return events, time.perf_counter() - start


def _fill_part(settings: Settings, customers: int, now_ms: int, part: int, parts: int) -> int:
    store = Store.from_url(settings.redis_url)
    sources = known_sources()
    events, start = 0, time.perf_counter()
    for number, first in enumerate(range(0, customers, CHUNK)):
        if number % parts != part:
            continue
        lines = [json.dumps(e).encode() for n in range(first, min(first + CHUNK, customers))
                 for e in customer_events(n, now_ms)]
        report = replay_file(store, settings, lines, "standard", sources)
        if report.errors:
            raise SystemExit(f"bench: the generated events do not replay: {report.errors[:3]}")
        events += report.appended
        drain_all(store, settings)
        if part == 0 and number % 20 == 20 - parts:
            rate = events * parts / (time.perf_counter() - start)
            done = min(first + CHUNK, customers)
            print(f"  filled about {done:,} customers ({rate:,.0f} events/s, {used_memory(store.redis) / done:,.0f} "
                  f"bytes/customer so far)", file=sys.stderr, flush=True)
    return events


KEY_SHAPES = ((re.compile(r"\{[^}]*@[^}]*\}"), "{<email>}"), (re.compile(r"\{k\d+\}"), "{k<b>}"),
              (re.compile(r"\{s\d+\}"), "{s<b>}"), (re.compile(r"\{log\d+\}"), "{log<k>}"),
              (re.compile(r"[\w.+-]+@[\w.-]+"), "<email>"), (re.compile(r"(?<=\}:c:)(?:[0-9a-f]{12}|0)$"), "<chunk>"),
              (re.compile(r"(?<=:)[a-z2-7]{12,}(?=:|$)"), "<sid>"), (re.compile(r"\d+"), "#"))


def key_shape(key: str) -> str:
    for pattern, shape in KEY_SHAPES:
        key = pattern.sub(shape, key)
    return key


def key_breakdown(client: Any, customers: int, sample: int = 3000) -> list[tuple[str, int, float, int]]:
    """Return (shape, keys, bytes per customer, keys with a TTL) per key shape, from MEMORY USAGE of a sample."""
    shapes: dict[str, list[str]] = {}
    for key in client.scan_iter(count=5000):
        shapes.setdefault(key_shape(key), []).append(key)
    rows = []
    for shape, names in shapes.items():
        picked = random.Random(0).sample(names, min(sample, len(names)))
        pipe = client.pipeline(transaction=False)
        for name in picked:
            pipe.memory_usage(name, samples=0)
            pipe.pttl(name)
        found = pipe.execute()
        sizes, ttls = found[0::2], found[1::2]
        mean = sum(s or 0 for s in sizes) / len(picked)
        with_ttl = round(sum(1 for t in ttls if t > 0) * len(names) / len(picked))
        rows.append((shape, len(names), mean * len(names) / customers, with_ttl))
    return sorted(rows, key=lambda row: -row[2])


def age_out(store: Store, settings: Settings, now_ms: int) -> dict[str, int]:
    """Reach the steady state: run the product's log trim with its clock moved on, settle the surveys that can no
    longer be answered by then, then drop what a TTL would."""
    retention_days = int(getattr(settings, "log_retention_days", 30))
    later = now_ms + (retention_days + 1) * DAY_MS
    done = {"log entries trimmed": int(store.trim_log(later - retention_days * DAY_MS) or 0),
            # beat's dispatch pass trims the notices every target has passed (none is configured here)
            "notices trimmed": int(store.trim_notices(range(keys.BUCKETS), later - retention_days * DAY_MS, [])),
            # what beat's expiry pass settles as each survey's expiry passes (here all at once, as upgrade-store does)
            "surveys settled": settle_expired(store, settings, later)}
    client = store.redis
    expiring = 0
    for batch in _batches(client.scan_iter(count=5000), 2000):
        pipe = client.pipeline(transaction=False)
        for key in batch:
            pipe.pttl(key)
        doomed = [key for key, ttl in zip(batch, pipe.execute(), strict=True) if ttl > 0]
        if doomed:
            client.unlink(*doomed)
            expiring += len(doomed)
    done["keys with a TTL dropped"] = expiring
    return done


def open_cases(store: Store, settings: Settings, now_ms: int) -> str:
    """Open the recovery cases of the fill's unsatisfied answers as beat's dispatcher does (the cases target alone),
    label any case beat would, and say what they cost: their bytes, and one filter's case numbers read from its label
    against the same numbers counted from every case kept."""
    before, start = used_memory(store.redis), time.perf_counter()
    while dispatch.dispatch(store, settings, "bench", now_ms, targets=case_targets(settings), budget_s=600).left:
        pass
    seconds = time.perf_counter() - start
    keep_case_labels(store)  # as beat does: every case opened here was labelled as it opened
    opened = store.case_counts(now_ms).opened
    wanted = Facets(team="billing")

    def numbers(label: str | None) -> Callable[[], Any]:
        return lambda: case_numbers(store, now_ms, lambda case, survey: case_facets(case, survey).passes(wanted),
                                    label=label)

    timed = []
    for label in ("team=billing", None):
        start = time.perf_counter()
        got, commands, trips = commands_run(store.redis, numbers(label))
        timed.append((got, (time.perf_counter() - start) * 1000, commands, trips))
    (labelled, ms, commands, trips), (walked, walk_ms, walk_commands, walk_trips) = timed
    same = "the same" if labelled == walked else f"NOT the same: {labelled} against {walked}"
    return (f"cases    {opened:,} recovery cases opened by the dispatcher in {seconds:,.0f} s, "
            f"{(used_memory(store.redis) - before) / max(opened, 1):,.0f} bytes a case; team=billing's case numbers "
            f"from its label {ms:.1f} ms ({commands:,} commands, {trips} round trips), every case walked "
            f"{walk_ms:,.1f} ms ({walk_commands:,} commands, {walk_trips} round trips), {same}")


def refill_risk_ranking(store: Store, settings: Settings) -> str:
    """Fill the at-risk ranking again from nothing, as beat does after a change of TRACKER_AT_RISK_SCORE, and say
    how long it took and whether it holds what the writers kept."""
    kept = store.redis.zrange(keys.RANK_RISK, 0, -1, withscores=True)
    store.redis.delete(keys.RANK_RISK, keys.RISK_STATE)
    start = time.perf_counter()
    at_risk = store.fill_risk_ranking(settings.at_risk_score)
    seconds = time.perf_counter() - start
    same = store.redis.zrange(keys.RANK_RISK, 0, -1, withscores=True) == kept
    return (f"at-risk  {len(kept):,} customers at risk, as the writers kept them; filled again from nothing in "
            f"{seconds:,.2f} s ({at_risk:,} ranked, {'the same' if same else 'NOT the same'})")


def _batches(items: Iterator[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class Reads:
    """The reads of issue 9's table, through the app as a signed-in lead and an API key would make them."""

    def __init__(self, store: Store, settings: Settings):
        unlimited = replace(settings, api_rate_limit=10**9)  # counted, never refused
        self.client = create_app(unlimited, store, enqueue=lambda task, *args: None).test_client()
        key = store.create_key(f"bench-scale-{os.getpid()}-{time.monotonic_ns()}")
        self.auth = {"Authorization": f"Bearer {key}"}
        self.dashboard = create_app(unlimited, store, enqueue=lambda task, *args: None).test_client()
        page = self.dashboard.get("/dashboard/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token, "no CSRF token on the login page"
        answer = self.dashboard.post("/dashboard/login", data={"key": key, "csrf_token": token.group(1)})
        assert answer.status_code == 303, answer.status_code

    def paths(self, today: datetime) -> list[tuple[str, Callable[[], Any]]]:
        start = (today - timedelta(days=89)).date().isoformat()
        end = today.date().isoformat()

        def api(path: str) -> Callable[[], Any]:
            return lambda: self.client.get(path, headers=self.auth)

        def whole(path: str) -> Callable[[], Any]:
            """A streamed answer (the CSV export), read to its end."""
            def read() -> Any:
                answer = self.client.get(path, headers=self.auth)
                answer.get_data()
                return answer
            return read

        return [("dashboard (30 days)", lambda: self.dashboard.get("/dashboard")),
                ("summary, 90 days", api(f"/api/v1/summary?from={start}&to={end}")),
                ("customers?sort=value", api("/api/v1/customers?sort=value")),
                ("customers?at_risk=true", api("/api/v1/customers?at_risk=true")),
                ("agents", api("/api/v1/agents")),
                ("agents?channel=chat", api("/api/v1/agents?channel=chat")),
                ("teams?tag=refund", api("/api/v1/teams?tag=refund")),
                ("summary?team=billing", api(f"/api/v1/summary?from={start}&to={end}&team=billing")),
                ("dashboard?channel=chat", lambda: self.dashboard.get("/dashboard?channel=chat")),
                ("one score card", api("/api/v1/customers/c17@example.no")),
                # Two filters of other dimensions: no rollup holds them, the answers are walked (tracker.store.sieve).
                ("summary, team & channel", api(f"/api/v1/summary?from={start}&to={end}&team=billing&channel=chat")),
                ("agents, team & channel", api("/api/v1/agents?team=billing&channel=chat")),
                ("dashboard, team & channel", lambda: self.dashboard.get("/dashboard?team=billing&channel=chat")),
                ("responses.csv?team=…", whole(f"/api/v1/export/responses.csv?from={start}&to={end}&team=billing"))]


def measure_reads(store: Store, settings: Settings, now_ms: int, runs: int) -> list[tuple[str, float, int, int, int]]:
    """Return (read, median ms, commands, round trips, status) for each read."""
    reads = Reads(store, settings)
    rows = []
    for name, read in reads.paths(datetime.fromtimestamp(now_ms / 1000, tz=UTC)):
        start = time.perf_counter()
        answer, commands, trips = commands_run(store.redis, read)  # also warms the read
        times = [time.perf_counter() - start]
        if times[0] < 5:  # a read that takes seconds is timed once: its count of commands says why
            times = []
            for _ in range(runs):
                gc.collect()
                start = time.perf_counter()
                read()
                times.append(time.perf_counter() - start)
        rows.append((name, statistics.median(times) * 1000, commands, trips, answer.status_code))
    return rows


def measure_erasure(store: Store, settings: Settings, customers: int, runs: int) -> tuple[str, int]:
    """Erase a few customers through the API (DELETE, as a data-protection officer would) while the log still holds
    every event; return what to print (the median and what it cost, beside a bare walk of the keyspace and of the
    log, which an erasure makes none of) and how many customers are gone."""
    reads = Reads(store, settings)
    logged = sum(int(store.redis.xlen(keys.stream(shard))) for shard in range(keys.BUCKETS))
    rows = []
    for n in range(1, customers, max(1, customers // max(1, runs)))[:max(1, runs)]:
        path = f"/api/v1/customers/c{n}@example.no"
        start = time.perf_counter()
        answer, commands, trips = commands_run(store.redis, partial(reads.client.delete, path, headers=reads.auth))
        rows.append((time.perf_counter() - start, commands, trips, answer.status_code))
    start = time.perf_counter()
    walked = sum(1 for _ in store.redis.scan_iter(count=1000))
    scan_ms = (time.perf_counter() - start) * 1000
    start = time.perf_counter()
    for shard in range(keys.BUCKETS):
        store.redis.xrange(keys.stream(shard))
    xrange_ms = (time.perf_counter() - start) * 1000
    ms, commands, trips, _ = sorted(rows)[len(rows) // 2]
    flag = "" if all(row[3] == 200 for row in rows) else f" (HTTP {sorted({row[3] for row in rows})})"
    return (f"erase    one customer (DELETE, median of {len(rows)}): {ms * 1000:,.1f} ms, {commands:,} commands, "
            f"{trips:,} round trips{flag}, with {logged:,} events in the log; bare walks it no longer makes: "
            f"SCAN of the {walked:,} keys {scan_ms:,.1f} ms, XRANGE of the log {xrange_ms:,.1f} ms"), len(rows)


def print_reads(rows: list[tuple[str, float, int, int, int]]) -> None:
    print(f"{'read':<26}{'median ms':>10}{'commands':>10}{'round trips':>13}")
    for name, ms, commands, trips, status in rows:
        flag = "" if status == 200 else f"  (HTTP {status})"
        print(f"{name:<26}{ms:>10,.1f}{commands:>10,}{trips:>13,}{flag}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each read (median printed)")
    parser.add_argument("--breakdown", action="store_true", help="print bytes per customer by key shape")
    parser.add_argument("--processes", type=int, default=1, help="processes replaying and applying the fill")
    parser.add_argument("--keep", action="store_true", help="leave the filled redis-server running (steady state)")
    parser.add_argument("--reads-only", metavar="URL", help="only time the reads on a Redis a --keep run filled")
    parser.add_argument("--hash-value", type=int, default=512,
                        help="hash-max-listpack-value of its Redis (512 as docker-compose.yml sets it, 64 the default)")
    args = parser.parse_args()
    now_ms = int(time.time() * 1000)
    if args.reads_only:
        with RoundTrips.installed():
            settings = bench_settings(bench_env(args.reads_only))
            store = Store.from_url(args.reads_only)
            print(f"reads at {git_commit()}, {datetime.now(tz=UTC):%Y-%m-%d %H:%M} UTC, on a Redis filled with "
                  f"{store.redis.zcard(keys.CUSTOMERS):,} customers")  # what it holds, not --customers
            store.keep_risk_ranking(settings.at_risk_score)  # as beat does: filled once, kept by the writers
            print_reads(measure_reads(store, settings, now_ms, args.runs))
        return
    folder = tempfile.mkdtemp(prefix="bench-scale-")
    with redis_server(Path(folder), "--hash-max-ziplist-value", str(args.hash_value), keep=args.keep) as url, \
            RoundTrips.installed():
        settings = bench_settings(bench_env(url))
        store = Store.from_url(url)
        store.redis.set("bench:warm", "1")
        store.redis.delete("bench:warm")
        empty = used_memory(store.redis)
        store.keep_risk_ranking(settings.at_risk_score)  # as beat does on an empty Redis: the writers keep it
        events, seconds = fill(store, settings, args.customers, now_ms, args.processes)
        keys_fresh = int(store.redis.dbsize())
        fresh, table_fresh = used_memory(store.redis) - empty, keyspace_table(store.redis)
        print(f"scale run at {git_commit()}, {datetime.now(tz=UTC):%Y-%m-%d %H:%M} UTC, "
              f"{args.customers:,} customers (5 tickets, 2 orders, 5 answers each), hash-max-listpack-value "
              f"{args.hash_value}")
        print(f"fill     {events:,} events replayed and applied in {seconds:,.0f} s ({events / seconds:,.0f} events/s)",
              flush=True)
        breakdown = key_breakdown(store.redis, args.customers) if args.breakdown else []
        print(open_cases(store, settings, now_ms), flush=True)  # measured apart: the bytes above have none
        rows = measure_reads(store, settings, now_ms, args.runs)
        print(refill_risk_ranking(store, settings), flush=True)
        erasure, erased = measure_erasure(store, settings, args.customers, args.runs)
        print(erasure, flush=True)
        left = args.customers - erased  # the steady state is of the customers the erasures left
        aged = age_out(store, settings, now_ms)
        steady, table_steady = used_memory(store.redis) - empty, keyspace_table(store.redis)
        keys_steady = int(store.redis.dbsize())
        print(f"memory   fresh {fresh / args.customers:,.0f} bytes/customer ({keys_fresh / args.customers:.1f} keys, "
              f"{table_fresh / args.customers:,.0f} bytes of them the hash table of keys); "
              f"steady {steady / left:,.0f} bytes/customer ({keys_steady / left:.1f} keys, "
              f"{table_steady / left:,.0f} bytes the table) "
              f"after {', '.join(f'{v:,} {k}' for k, v in aged.items())}")
        if args.breakdown:
            for state, shapes in (("fresh", breakdown), ("steady", key_breakdown(store.redis, left))):
                print(f"{state} bytes by key shape")
                for shape, count, per_customer, with_ttl in shapes:
                    if per_customer >= 1:
                        print(f"  {per_customer:8,.0f} B/customer  {count:>9,} keys  {with_ttl:>9,} with TTL  {shape}")
        print_reads(rows)
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
