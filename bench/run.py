"""Benchmarks: each prints a ratio against a baseline measured in the same run, never an absolute verdict.

    make bench            # or: .venv/bin/python bench/run.py [--events N]

1. Ingest: applying events from the log in batches (what the worker does) against applying the
   same events one Redis round trip at a time (what a task per event would at best do).
2. Receive: POST /webhooks/standard (verify, parse, dedupe+append) against a bare Flask POST that
   only parses JSON, both through the WSGI test client in this process.
3. Answers: recording answers (one Lua script each) against a plain HSET per answer.
4. Memory: Redis bytes per stored event and per recorded answer.
5. Hot paths: a retried delivery (parsed, and found by its append's one round trip) against a bare POST,
   survey mails filled from the rendered template against rendering
   each whole, and the whole mail as sent written directly (tracker.mail.wire) against the email
   package's build of it, written as smtplib writes it.
6. Time index: layout 7's one sorted set of sids by time against the chunked time index (bytes and Redis CPU per
   entry, entries in time order and shuffled).

The score card, the receiver over real processes, accepted-and-applied and surveys due at once are measured by
bench/http_run.py; bytes per customer and the reads at scale by bench/scale.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flask import Flask, request  # noqa: E402

from tests.signing import SECRETS, signed  # noqa: E402
from tests.support import zendesk_body  # noqa: E402
from tracker.cli.dev import free_port, start_redis  # noqa: E402
from tracker.config import load_settings  # noqa: E402
from tracker.events import parse_event  # noqa: E402
from tracker.ingest import apply as ingest  # noqa: E402
from tracker.mail.message import SurveyMail, build_survey_message, render_survey, render_survey_whole  # noqa: E402
from tracker.mail.wire import encode_message, encode_survey_message  # noqa: E402
from tracker.model import Aggregate, Event, Survey  # noqa: E402
from tracker.scales import SCALES  # noqa: E402
from tracker.store import Store  # noqa: E402
from tracker.web.app import create_app  # noqa: E402


def timed(run: Callable[[], Any]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def event(n: int) -> dict[str, Any]:
    return {"type": "ticket.solved", "id": f"evt-{n}", "occurred_at": "2026-11-22T10:00:00Z",
            "ticket": {"id": f"B-{n}", "subject": "Bench", "status": "solved", "team": "t", "brand": "b",
                       "agent": {"id": f"a-{n % 20}", "name": "Agent"}},
            "customer": {"id": f"c-{n}", "email": f"c{n % 5000}@example.no", "name": "C"}}


def bench_ingest(store: Store, settings: Any, count: int) -> None:
    events = [ingest_event(n) for n in range(count)]
    store.redis.flushall()
    store.append_delivery("bench", events)
    batched = timed(lambda: ingest.drain(store, settings, "bench", budget_s=600))
    store.redis.flushall()
    one_by_one = timed(lambda: [store.apply([(e, e.customer.email or "")], 0) for e in events])
    print(f"ingest   {count} events: batched drain {count / batched:,.0f}/s, one round trip per event "
          f"{count / one_by_one:,.0f}/s -> batched is {one_by_one / batched:.1f}x faster")


def ingest_event(n: int) -> Event:
    return parse_event(event(n), "standard")


def bench_receive(store: Store, settings: Any, count: int) -> None:
    store.redis.flushall()
    client = create_app(settings, store, enqueue=lambda task, *args: None).test_client()
    bodies = [json.dumps(event(n)).encode() for n in range(count)]
    requests_ = []
    for n, body in enumerate(bodies):
        headers, _ = signed("standard", body, headers={"webhook-id": f"msg-{n}"})
        requests_.append((body, {"Content-Type": "application/json", **headers}))
    ours = timed(lambda: [client.post("/webhooks/standard", data=b, headers=h) for b, h in requests_])
    bare = Flask("bare")

    @bare.post("/hook")
    def hook() -> Any:
        return {"status": "accepted", "events": len([request.get_json()])}, 202

    bare_client = bare.test_client()
    baseline = timed(lambda: [bare_client.post("/hook", data=b, headers=h) for b, h in requests_])
    print(f"receive  {count} deliveries: webhook {count / ours:,.0f}/s, bare Flask POST {count / baseline:,.0f}/s "
          f"-> the receiver costs {ours / baseline:.1f}x a bare POST")


def bench_answers(store: Store, settings: Any, count: int) -> None:
    store.redis.flushall()
    now = int(time.time() * 1000)
    surveys = [Survey(sid=f"s{n:08d}", customer=f"c{n % 5000}@example.no", source="standard", agent_id=f"a-{n % 20}",
                      team="t", brand="b", scale="csat5", tkey=f"standard:B-{n}", kind="ticket", status="sent")
               for n in range(count)]
    part = Aggregate.of_answer(SCALES["csat5"], 4, now, settings.score_half_life_days)
    scripted = timed(lambda: [store.record_answer(s, 4, "", now, part) for s in surveys])
    used = store.redis.info("memory")["used_memory"]
    baseline = timed(lambda: [store.redis.hset(f"plain:{s.sid}", mapping={"rating": 4, "at": now})
                              for s in surveys])
    print(f"answers  {count} answers: scripted {count / scripted:,.0f}/s, plain HSET {count / baseline:,.0f}/s "
          f"-> recording an answer costs {scripted / baseline:.1f}x a plain write")
    return used


def bench_memory(store: Store, settings: Any, count: int) -> None:
    store.redis.flushall()
    empty = store.redis.info("memory")["used_memory"]
    store.append_delivery("bench", [ingest_event(n) for n in range(count)])
    logged = store.redis.info("memory")["used_memory"]
    ingest.drain(store, settings, "bench", budget_s=600)
    applied = store.redis.info("memory")["used_memory"]
    print(f"memory   {(logged - empty) / count:,.0f} bytes per logged event, "
          f"{(applied - logged) / count:,.0f} bytes per applied event (tickets, profiles, due entries)")


def bench_time_index(store: Store, count: int) -> None:
    """One sorted set of sids by time (layout 7's t:responses) against the chunked time index, fed the same entries
    ten at a time: bytes (MEMORY USAGE of every key) and Redis's own CPU per entry, in time order and shuffled."""
    import random

    from tracker.store import keys, time_index

    rows = [(f"{n:04d}{secrets.token_hex(8)}", 1_764_000_000_000 + n * 997) for n in range(count)]
    shuffled = random.Random(9).sample(rows, len(rows))

    def redis_cpu() -> float:
        found = store.redis.info("cpu")
        return float(found["used_cpu_sys"]) + float(found["used_cpu_user"])

    def cost(write: Callable[[list[tuple[str, int]]], Any], feed: list[tuple[str, int]],
             pattern: str) -> tuple[float, float]:
        store.redis.flushall()
        before = redis_cpu()
        for start in range(0, len(feed), 10):
            write(feed[start:start + 10])
        used = redis_cpu() - before
        held = sum(store.redis.memory_usage(key, samples=0) or 0 for key in store.redis.scan_iter(match=pattern))
        return held / count, used / count * 1e6

    plain = cost(lambda batch: store.redis.zadd("t:plain", dict(batch)), rows, "t:plain")
    ordered = cost(lambda batch: time_index.place(store, "resp", adds=batch), rows, "t:{ix:resp}:*")
    mixed = cost(lambda batch: time_index.place(store, "resp", adds=batch), shuffled, "t:{ix:resp}:*")
    chunks = sum(1 for _ in store.redis.scan_iter(match=keys.time_index_chunk("resp", "*")))
    print(f"index    {count} entries ten at a time: one sorted set {plain[0]:.0f} bytes and {plain[1]:.1f} us of Redis "
          f"CPU an entry; chunks {ordered[0]:.0f} bytes, {ordered[1]:.1f} us in time order, {mixed[0]:.0f} bytes, "
          f"{mixed[1]:.1f} us shuffled ({chunks} chunks) -> chunks take {mixed[0] / plain[0]:.2f}x the bytes "
          f"and {mixed[1] / plain[1]:.1f}x the Redis CPU")


def bench_hot_paths(store: Store, settings: Any, count: int) -> None:
    """Print a repeated delivery (found by its append) against a bare POST; mail fills."""
    store.redis.flushall()
    settings = dataclasses.replace(settings, source_secrets={**settings.source_secrets, "zendesk": SECRETS["zendesk"]})
    client = create_app(settings, store, enqueue=lambda task, *args: None).test_client()
    json_type = {"Content-Type": "application/json"}
    repeats: list[tuple[bytes, dict[str, str]]] = []
    for n in range(count):
        body = json.dumps(zendesk_body(f"Z-{n}", f"c{n}@example.no", at="2026-11-22T10:00:00Z")).encode()
        repeats.append((body, {**json_type, **signed("zendesk", body)[0],
                               "x-zendesk-webhook-invocation-id": f"inv-{n}"}))
    for b, h in repeats:
        client.post("/webhooks/zendesk", data=b, headers=h)
    answers = [client.post("/webhooks/zendesk", data=b, headers=h).json for b, h in repeats[:1]]
    assert answers == [{"status": "duplicate"}], answers
    bare = Flask("bare")

    @bare.post("/hook")
    def hook() -> Any:
        return {"status": "duplicate", "events": len([request.get_json()])}, 200

    bare_client = bare.test_client()
    repeated = baseline = float("inf")
    for _ in range(3):  # interleaved, best of three each
        repeated = min(repeated, timed(lambda: [client.post("/webhooks/zendesk", data=b, headers=h)
                                                for b, h in repeats]))
        baseline = min(baseline, timed(lambda: [bare_client.post("/hook", data=b, headers=h) for b, h in repeats]))
    print(f"retries  {count} duplicates, each parsed and found by its append (one round trip): "
          f"{count / repeated:,.0f}/s, bare Flask POST {count / baseline:,.0f}/s -> "
          f"{baseline / repeated:.0%} of a bare POST")
    mails = [SurveyMail(to_email=f"c{n}@example.no", to_name=f"Kari {n}", lang=("nb", "en", "de")[n % 3],
                        scale_name="csat5", ticket_ref=f"#{n}", ticket_subject=f"Card declined <{n}>",
                        mail_from="Acme <support@acme.test>", message_id=f"<s{n}@acme.test>",
                        rating_url=f"https://csat.example/s/tok{n}?rating={{value}}",
                        unsubscribe_url=f"https://csat.example/u/tok{n}", reply_to=f"reply+tok{n}@acme.test",
                        expires_at=datetime(2026, 12, 6, tzinfo=UTC)) for n in range(count)]
    assert [render_survey(m) for m in mails[:30]] == [render_survey_whole(m) for m in mails[:30]]
    filled = whole = float("inf")
    for _ in range(3):
        filled = min(filled, timed(lambda: [render_survey(m) for m in mails]))
        whole = min(whole, timed(lambda: [render_survey_whole(m) for m in mails]))
    print(f"mail     {count} surveys: filled {filled / count * 1e6:,.0f} us/mail, rendered whole per mail "
          f"{whole / count * 1e6:,.0f} us/mail -> {whole / filled:.1f}x faster")
    written = built = float("inf")
    for _ in range(3):
        written = min(written, timed(lambda: [encode_survey_message(m).data for m in mails]))
        built = min(built, timed(lambda: [encode_message(build_survey_message(m)).data for m in mails]))
    print(f"mail     {count} surveys as sent (headers, MIME encoding): written directly {written / count * 1e6:,.0f} "
          f"us/mail, built by the email package {built / count * 1e6:,.0f} us/mail -> {built / written:.1f}x faster")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        port = free_port()
        process = start_redis(Path(folder), port)
        url = f"redis://127.0.0.1:{port}/0"
        try:
            env = {"TRACKER_REDIS_URL": url, "TRACKER_SECRET_KEY": secrets.token_urlsafe(32),
                   "TRACKER_SMTP_URL": "smtp://127.0.0.1:1", "TRACKER_SOURCE_STANDARD_SECRET": SECRETS["standard"]}
            settings = load_settings({**os.environ, **env})
            store = Store.from_url(url)
            bench_ingest(store, settings, args.events)
            bench_receive(store, settings, min(args.events, 2000))
            bench_answers(store, settings, args.events)
            bench_memory(store, settings, args.events)
            bench_hot_paths(store, settings, min(args.events, 2000))
            bench_time_index(store, 4 * args.events)
        finally:
            process.terminate()
            process.wait()


if __name__ == "__main__":
    main()
