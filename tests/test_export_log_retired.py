"""`tracker export-log` then `tracker replay` into an empty Redis keeps what retention retired: the answers and surveys
TRACKER_RETENTION_DAYS deleted still count in every aggregate, rollup, customer card, ranking and summary of the new
install (whose open ranges still start at the first activity), and `tracker rebuild-scores` changes nothing there.
Replaying twice counts nothing twice; a bad line is reported with its number; a webhook carrying one is ignored."""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import session_env
from tests.support import World, drain, iso, solved_event, tracker, wait_until
from tests.test_migrations import dry_replay, other_db, scores
from tests.test_migrations import replayed as replayed_into
from tracker.answers.record import record_answer
from tracker.config import Settings, load_settings
from tracker.mail.smtp import SmtpSender
from tracker.model import COUNTS, SUMS
from tracker.privacy.retention import retire_old_records
from tracker.store import Store, keys
from tracker.store.rollups import is_float_field
from tracker.surveys import due
from tracker.web.app import create_app

DAY_MS = 86_400_000
OLD, BOTH, NEW = "old@example.no", "both@example.no", "new@example.no"
LISTS = ("agents", "teams", "sources", "brands", "channels", "tags", "organisations", "customers",
         "customers?sort=score", "customers?sort=recent", "customers?sort=responses", "customers?at_risk=true",
         "customers?at_risk=true&sort=recent", "customers?at_risk=true&sort=score", "tags?tag=legacy")
RANKS = (keys.RANK_SCORE, keys.RANK_RECENT, keys.RANK_RESPONSES, keys.RANK_UNHAPPY, keys.RANK_RISK, keys.RISK_RECENT,
         keys.RISK_RESPONSES)


@pytest.fixture
def env(redis_url: str, broker_url: str, smtp: Any) -> dict[str, str]:
    """The usual environment, with no throttle (a customer answers several surveys) and a high at-risk score."""
    return session_env(redis_url, broker_url, smtp, TRACKER_SURVEY_THROTTLE_DAYS="0", TRACKER_AT_RISK_SCORE="60")


def now_ms() -> int:
    return int(time.time() * 1000)


def surveyed_long_ago(world: World, store: Store, settings: Settings, ticket: str, email: str, days_ago: int,
                      rating: int | None, agent: str, team: str, reason: str | None = None, **fields: Any) -> None:
    """Solve and survey a ticket days_ago through the real send path, and answer it then (rating None: no answer)."""
    then = now_ms() - days_ago * DAY_MS
    body = solved_event(ticket=ticket, email_address=email, at=iso(days_ago * 86400 + 120), team=team,
                        agent={"id": agent, "name": agent.upper()}, **fields)
    body["customer"] = {"id": f"c-{email.split('@')[0]}", "email": email, "name": email.split("@")[0].title()}
    world.event(body)
    # Applied with a long expiry: a solve this old is otherwise skipped as too old to survey.
    drain(store, load_settings({**world.env, "TRACKER_SURVEY_EXPIRY_DAYS": str(days_ago + 20)}))
    claimed, members = due.sweep(store, then)
    with SmtpSender(settings.smtp_url) as sender:
        assert [due.send_due(store, settings, sender, m, claimed, then).status for m in members] == ["sent"]
    if rating is not None:
        sid = world.answer_at(email, rating, then + 60_000, "Long ago")
        survey = store.survey(sid)
        if reason is not None and survey is not None:
            record_answer(store, settings, survey, rating, "Long ago", then + 60_000, reason=reason)


def history(world: World, store: Store, settings: Settings) -> Settings:
    """Answers of three customers for three agents and teams, 200, 100, 70 and 40 days old and of today; retention at
    30 days then retires every old one (old@ keeps nothing stored, the tag legacy, agent a-3 and team support only
    what retention retired). Return the settings with the retention."""
    surveyed_long_ago(world, store, settings, "T-1", OLD, 100, 1, "a-1", "billing", reason="slow")
    surveyed_long_ago(world, store, settings, "T-2", OLD, 40, 2, "a-2", "shipping", tags=["legacy"])
    surveyed_long_ago(world, store, settings, "T-3", BOTH, 200, 5, "a-3", "support")
    surveyed_long_ago(world, store, settings, "T-4", BOTH, 70, None, "a-2", "shipping")  # sent, never answered
    world.solved_and_answered("T-5", BOTH, 4, "Fine", team="billing", agent={"id": "a-1", "name": "A-1"})
    world.solved_and_answered("T-6", NEW, 5, "Great", team="shipping", agent={"id": "a-2", "name": "A-2"})
    retention = load_settings({**world.env, "TRACKER_RETENTION_DAYS": "30"})
    removed = retire_old_records(store, retention, now_ms())
    assert (removed.surveys, removed.answers) == (4, 3)
    assert store.customer_responses(OLD) == [] and len(store.customer_responses(BOTH)) == 1
    return retention


def raw_numbers(store: Store) -> dict[str, Any]:
    """Every aggregate's sums and days, every rollup, the reasons' names and the first activity, as stored."""
    held: dict[str, Any] = {"first activity": store.first_activity_ms(), "reasons": store.reasons()}
    for kind in keys.AGGREGATE_KINDS:
        for ident in store.ids(kind):
            agg = store.aggregate(kind, ident)
            held[f"{kind}:{ident}"] = ({name: getattr(agg, name) for name in (*COUNTS, *SUMS)},
                                       {day: nv for day, nv in agg.days.items() if nv != (0, 0)})
            if kind != "customer":
                held[f"{kind}:{ident} rollup"] = store.rollup_fields(kind, ident)
    return held


def same_numbers(left: dict[str, Any], right: dict[str, Any]) -> None:
    assert left.keys() == right.keys(), sorted(set(left) ^ set(right))
    for name, value in left.items():
        if name.endswith("rollup"):
            assert value.keys() == right[name].keys(), (name, sorted(set(value) ^ set(right[name])))
            for field, number in value.items():
                assert math.isclose(number, right[name][field], rel_tol=1e-9, abs_tol=1e-9), (name, field)
                assert is_float_field(field) or number == right[name][field], (name, field)
        elif isinstance(value, tuple):
            sums, days = value
            assert days == right[name][1], name
            for field, number in sums.items():
                assert math.isclose(number, right[name][0][field], rel_tol=1e-9, abs_tol=1e-9), (name, field)
        else:
            assert value == right[name], name


def read_by_leads(store: Store, settings: Settings) -> dict[str, Any]:
    """What leads read over the API: the lists and rankings, each customer's card, the summary of all time and of a
    range over the retired days (by source and by team too); and the ranked sets the lists page through."""
    client = create_app(settings, store, enqueue=lambda *args: None).test_client()
    auth = {"Authorization": f"Bearer {store.create_key(f'lead-{time.time_ns()}')}"}
    today = datetime.now(UTC).date()
    start = today - timedelta(days=250)
    urls = [f"/api/v1/{name}" for name in LISTS]
    urls += ["/api/v1/summary", f"/api/v1/summary?from={start}&to={today}",
             f"/api/v1/summary?from={start}&to={today - timedelta(days=35)}&team=support",
             f"/api/v1/summary?from={start}&to={today}&channel=email&tag=legacy"]
    urls += [f"/api/v1/customers/{email}" for email in (OLD, BOTH, NEW)]
    read: dict[str, Any] = {}
    for url in urls:
        response = client.get(url, headers=auth)
        assert response.status_code == 200, (url, response.json)
        read[url] = response.json
    read["ranks"] = {rank: store.redis.zrange(rank, 0, -1, withscores=True) for rank in RANKS}
    read["entity ranks"] = {kind: store.redis.zrange(keys.entity_rank(kind), 0, -1, withscores=True)
                            for kind in keys.AGGREGATE_KINDS if kind != "customer"}
    return read


def everything(store: Store, settings: Settings) -> tuple[Any, ...]:
    return raw_numbers(store), scores(store, settings, now_ms()), read_by_leads(store, settings)


def same_ranks(left: dict[str, list[tuple[str, float]]], right: dict[str, list[tuple[str, float]]]) -> None:
    """Compare ranked sets: the same members in the same order, scored alike (a score is a quotient of float sums,
    which sums added in another order can leave a last digit apart)."""
    assert left.keys() == right.keys()
    for name, members in left.items():
        assert [member for member, _ in members] == [member for member, _ in right[name]], name
        for (member, score), (_, other) in zip(members, right[name], strict=True):
            assert math.isclose(score, other, rel_tol=1e-12), (name, member)


def same(left: tuple[Any, ...], right: tuple[Any, ...]) -> None:
    same_numbers(left[0], right[0])
    assert left[1] == right[1]
    for name, value in left[2].items():
        if name.endswith("ranks"):
            same_ranks(value, right[2][name])
        else:
            assert value == right[2][name], name


def replayed(env: dict[str, str], redis_server: str, path: Path, db: int) -> tuple[dict[str, str], Settings, Store]:
    other_env, other_settings, other = replayed_into(env, redis_server, path, db)
    other.keep_risk_ranking(other_settings.at_risk_score)  # as beat fills it on an empty Redis
    return other_env, other_settings, other


def test_a_replayed_export_keeps_every_number_retention_retired_and_a_rebuild_changes_nothing(
        world, store, settings, env, redis_server, tmp_path: Path):
    history(world, store, settings)
    before = everything(store, settings)
    summary = before[2]["/api/v1/summary"]
    assert summary["from"] == (datetime.now(UTC).date() - timedelta(days=200)).isoformat()
    assert (summary["responses"], summary["surveys_sent"]) == (5, 6)
    assert before[2][f"/api/v1/customers/{OLD}"]["responses"] == 2
    assert [row["customer"] for row in before[2]["/api/v1/customers?at_risk=true"]["customers"]] == [OLD]
    assert OLD in dict(before[2]["ranks"][keys.RANK_RECENT]) and before[0]["reasons"] == ["slow"]
    path = tmp_path / "export.jsonl"
    exported = tracker(env, "export-log", str(path))
    assert exported.returncode == 0, exported.stderr

    other_env, other_settings, other = replayed(env, redis_server, path, 11)
    same(everything(other, other_settings), before)
    entities = store.redis.scard(keys.RETIRED_INDEX)
    assert f"the retired sums of {entities} entities" in exported.stdout, exported.stdout
    # The numbers are what a rebuild computes, there as here.
    for rebuilt_env in (other_env, env):
        rebuilt = tracker(rebuilt_env, "rebuild-scores")
        assert rebuilt.returncode == 0, rebuilt.stderr
        assert rebuilt.stdout == "Rebuilt every aggregate from 2 stored responses.\n"
    same(everything(other, other_settings), before)
    same(everything(store, settings), before)


def test_workers_applying_the_replay_as_it_is_appended_end_at_the_same_numbers(
        world, store, settings, env, redis_server, tmp_path: Path, start_worker):
    history(world, store, settings)
    before = everything(store, settings)
    path = tmp_path / "export.jsonl"
    assert tracker(env, "export-log", str(path)).returncode == 0

    # The new install's worker and beat run while the file is replayed: the carried sums and the answers' outbox
    # steps reach the same entities in any order.
    other_env, other_settings, other = other_db(redis_server, env, 14)
    start_worker(beat=True, TRACKER_REDIS_URL=other_env["TRACKER_REDIS_URL"])
    replay = tracker(other_env, "replay", str(path))
    assert replay.returncode == 0, replay.stderr

    def caught_up() -> bool:
        try:
            same(everything(other, other_settings), before)
        except AssertionError:
            return False
        return True

    wait_until(caught_up, timeout=60, what="the workers applying the replay")


def contents(store: Store) -> dict[str, Any]:
    """Every key but the log and the deliveries' marks, with what it holds: to see that a second replay wrote
    nothing."""
    held: dict[str, Any] = {}
    for key in store.redis.scan_iter():
        if key.startswith("t:{log"):  # the log counts the second replay's deliveries as duplicates
            continue
        kind = store.redis.type(key)
        if kind == "hash":
            held[key] = store.redis.hgetall(key)
        elif kind == "set":
            held[key] = sorted(store.redis.smembers(key))
        elif kind == "zset" and ":outbox" not in key:
            held[key] = store.redis.zrange(key, 0, -1, withscores=True)
        elif kind == "string" and "lease" not in key:
            held[key] = store.redis.get(key)
    return held


def test_replaying_twice_counts_nothing_twice_and_a_dry_run_counts_the_retired_lines(
        world, store, settings, env, redis_server, tmp_path: Path):
    history(world, store, settings)
    before = everything(store, settings)
    path = tmp_path / "export.jsonl"
    assert tracker(env, "export-log", str(path)).returncode == 0
    entities = store.redis.scard(keys.RETIRED_INDEX)
    dry = dry_replay(env, redis_server, path, 12)
    assert f"  retired sums to carry    {entities}\n" in dry, dry
    assert "  first activity to keep   1\n" in dry, dry

    other_env, other_settings, other = replayed(env, redis_server, path, 12)
    held = contents(other)
    again = tracker(other_env, "replay", str(path))
    assert again.returncode == 0, again.stderr
    # The retired sums, the first activity and the API key everything() read the old install's API with.
    assert f"({entities + 2} already there)" in again.stdout, again.stdout
    World(None, other, other_env, None, None).send()
    assert contents(other) == held
    same(everything(other, other_settings), before)
    dry = tracker(other_env, "replay", str(path), "--dry-run")
    assert "  retired sums to carry    0\n" in dry.stdout, dry.stdout
    assert f"  already held             {entities + 2} " in dry.stdout, dry.stdout


def test_a_bad_retired_line_is_reported_with_its_number_and_the_others_still_carry(
        world, store, settings, env, redis_server, tmp_path: Path):
    history(world, store, settings)
    path = tmp_path / "export.jsonl"
    assert tracker(env, "export-log", str(path)).returncode == 0
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    retired = [line for line in lines if line["type"] == "scores.retired"]
    assert len(retired) == store.redis.scard(keys.RETIRED_INDEX) > 10
    team = next(line for line in retired if line["kind"] == "team" and line["id"] == "support")
    bad = [{**team, "sums": {**team["sums"], "n": "many"}}, {**team, "kind": "planet"},
           {**team, "daily": {"yesterday": 1}}, {"type": "scores.retired"},
           {"type": "scores.first_activity", "at": "long ago"},
           {**next(line for line in retired if line["kind"] == "customer"), "rollup": {"2026-01-01|n": 1}}]
    broken = tmp_path / "bad.jsonl"
    broken.write_text("".join(json.dumps(line) + "\n" for line in (*bad, *retired)))

    other_env, _, other = other_db(redis_server, env, 13)
    result = tracker(other_env, "replay", str(broken))
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    errors = result.stderr.splitlines()
    assert [error.split(": ")[0] for error in errors] == [f"{broken}:{n}" for n in range(1, 7)], errors
    assert "not a valid scores.retired line" in errors[0] and "not a valid scores.first_activity line" in errors[4]
    assert "Restored 0 recovery cases, 0 unsubscribes, 0 suppressed addresses and the retired sums of " \
           f"{len(retired)} entities (0 already there)" in result.stdout, result.stdout
    assert other.aggregate("team", "support").n == 1 and other.aggregate("team", "support").sent == 1


def test_a_webhook_carrying_a_retired_line_is_ignored_as_survey_sent_is(world, store, settings, env, post_event,
                                                                        tmp_path: Path):
    history(world, store, settings)
    path = tmp_path / "export.jsonl"
    assert tracker(env, "export-log", str(path)).returncode == 0
    kinds: dict[str, Any] = {}
    for line in map(json.loads, path.read_text().splitlines()):
        kinds.setdefault(line["type"], line)
    length = store.lag().length
    for kind in ("scores.retired", "scores.first_activity"):
        response = post_event("standard", kinds[kind])
        assert (response.status_code, response.json) == (200, {"status": "ignored"}), kind
    assert store.lag().length == length
