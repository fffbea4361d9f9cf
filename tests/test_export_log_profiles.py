"""`tracker export-log` then `tracker replay` into an empty Redis keeps what only the trimmed log said of a customer:
their orders (the card's orders and totals, the ranking by order value, the dashboard's revenue at risk), their name
and locale, and their ids per source (an event naming them only by id finds them in the new install). An order whose
events the log still holds counts each of them once, whether they are applied before the profile line or after;
replaying twice changes nothing; a bad line is reported with its number; a webhook carrying one is ignored."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import session_env
from tests.support import World, drain, iso, send_all, solved_event, tracker
from tests.test_export_log_cases import contents
from tests.test_export_log_retired import replayed
from tests.test_migrations import dry_replay, other_db
from tracker.config import Settings, load_settings
from tracker.store import Store, keys
from tracker.web.app import create_app

ANNA, BJORN, CARL, DAGNY = "anna@example.no", "bjorn@example.no", "carl@example.no", "dagny@example.no"
PEOPLE = {ANNA: ("Anna", "nb", "c-anna"), BJORN: ("Bjørn", "sv", "c-bjorn"), CARL: ("Carl", "da", "c-carl"),
          DAGNY: ("Dagny", "fi", "c-dagny")}


@pytest.fixture
def env(redis_url: str, broker_url: str, smtp: Any) -> dict[str, str]:
    """The usual environment, with no throttle and a high at-risk score (one unhappy answer puts a customer at risk)."""
    return session_env(redis_url, broker_url, smtp, TRACKER_SURVEY_THROTTLE_DAYS="0", TRACKER_AT_RISK_SCORE="60")


def now_ms() -> int:
    return int(time.time() * 1000)


def order_event(email: str, order: str, kind: str, total: str, days_ago: float, currency: str = "NOK",
                by_id: bool = False) -> dict[str, Any]:
    """An order event of one of the customers (only their id in the standard source when by_id)."""
    name, locale, ident = PEOPLE[email]
    customer = {"id": ident} if by_id else {"id": ident, "email": email, "name": name, "locale": locale}
    return {"type": f"order.{kind}", "id": f"evt-{order}-{kind}-{total}", "occurred_at": iso(days_ago * 86400),
            "order": {"id": order, "total": total, "currency": currency, "status": kind}, "customer": customer}


def ticket_event(email: str, ticket: str, days_ago: float) -> dict[str, Any]:
    name, locale, ident = PEOPLE[email]
    return {"type": "ticket.created", "id": f"evt-{ticket}", "occurred_at": iso(days_ago * 86400),
            "ticket": {"id": ticket, "subject": "Where is my parcel", "status": "open", "team": "shipping"},
            "customer": {"id": ident, "email": email, "name": name, "locale": locale}}


OLD = [  # applied, then trimmed from the log
    order_event(ANNA, "A-1", "created", "2000.00", 60), order_event(ANNA, "A-1", "fulfilled", "2000.00", 59),
    order_event(ANNA, "A-2", "created", "300.00", 58), order_event(ANNA, "A-2", "refunded", "50.00", 57),
    order_event(BJORN, "B-1", "created", "500.00", 50, "EUR"), order_event(BJORN, "B-2", "created", "80.00", 50),
    order_event(BJORN, "B-2", "cancelled", "80.00", 49),
    order_event(CARL, "C-1", "created", "700.00", 45), order_event(CARL, "C-2", "created", "400.00", 44),
    ticket_event(ANNA, "T-A", 55), ticket_event(CARL, "T-C", 40),
    order_event(DAGNY, "D-1", "created", "250.00", 35), ticket_event(DAGNY, "T-D", 34),  # none of hers is kept
]
NEW = [  # still in the log when it is exported: replayed, and applied again
    order_event(ANNA, "A-2", "refunded", "25.00", 5),  # a second refund of an order the log half forgot
    order_event(ANNA, "A-3", "created", "100.00", 4),  # an order the log holds whole
    order_event(CARL, "C-1", "fulfilled", "700.00", 3),  # the order's creation was trimmed
    order_event(CARL, "C-2", "refunded", "40.00", 2),  # its hash expires below; the log still holds the refund
]


def history(world: World, store: Store, settings: Settings) -> None:
    """Orders and tickets of four customers, the older ones trimmed from the log (all of Dagny's: no survey of hers
    names her either); Bjørn answers unhappily (at risk), and Carl's order C-2 is forgotten while the log still holds
    its refund (as a surveyed order is, once its survey can no longer be answered)."""
    for body in OLD:
        world.event(body)
    world.solved_and_answered("T-B", BJORN, 1, "Slow")
    drain(store, settings)
    cutoff = now_ms() + 1
    time.sleep(0.01)
    for body in NEW:
        world.event(body)
    drain(store, settings)
    assert store.trim_log(cutoff) >= len(OLD)
    assert store.lag().length == len(NEW)
    assert store.redis.delete(keys.order("standard:C-2")) == 1


def read(store: Store, settings: Settings) -> dict[str, Any]:
    """What leads read of the customers: each card (orders, totals per currency, name), the ranking by order value,
    the dashboard's revenue at risk (the order totals of the customers at risk), names, locales and ids."""
    client = create_app(settings, store, enqueue=lambda *args: None).test_client()
    auth = {"Authorization": f"Bearer {store.create_key(f'lead-{time.time_ns()}')}"}
    seen: dict[str, Any] = {}
    for url in [f"/api/v1/customers/{email}" for email in PEOPLE] + ["/api/v1/customers?sort=value",
                                                                     "/api/v1/customers?at_risk=true"]:
        response = client.get(url, headers=auth)
        assert response.status_code == 200, (url, response.json)
        seen[url] = response.json
    at_risk = [row["customer"] for row in seen["/api/v1/customers?at_risk=true"]["customers"]]
    seen["revenue at risk"] = (at_risk, store.order_totals(at_risk))
    seen["value ranking"] = store.redis.zrange(keys.RANK_VALUE, 0, -1, withscores=True)
    for email in PEOPLE:
        profile = store.profile(email)
        assert profile is not None, email
        seen[email] = (profile.name, profile.locale, profile.aliases)
        seen[f"{email} orders"] = [(o.key, o.order, o.refunded) for o in store.customer_orders(email)]
    return seen


def test_a_moved_install_keeps_the_orders_names_and_ids_only_the_trimmed_log_said(
        world, store, settings, env, redis_server, tmp_path: Path):
    history(world, store, settings)
    before = read(store, settings)
    card = before[f"/api/v1/customers/{ANNA}"]
    assert card["orders"]["count"] == 3 and card["orders"]["totals"] == {"NOK": "2325.00"}, card["orders"]
    assert before[f"/api/v1/customers/{BJORN}"]["orders"]["totals"] == {"EUR": "500.00"}
    assert before[f"/api/v1/customers/{CARL}"]["orders"]["totals"] == {"NOK": "1060.00"}
    assert before["revenue at risk"] == ([BJORN], [(1, {"EUR": 50000})])
    assert before[DAGNY][:2] == ("Dagny", "fi") and ("standard", "c-dagny") in before[DAGNY][2]
    path = tmp_path / "export.jsonl"
    exported = tracker(env, "export-log", str(path))
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.splitlines()[0] == ("Wrote 4 events, 0 unanswered surveys, 0 skipped surveys, "
                                               "0 failed surveys and 1 answer."), exported.stdout
    assert "Wrote the profiles of 4 customers with 8 orders (4 holding what the trimmed log no longer says" \
        in exported.stdout, exported.stdout

    other_env, other_settings, other = replayed(env, redis_server, path, 9)
    assert read(other, other_settings) == before
    # An event naming Dagny only by her id in the source lands on her.
    late = tmp_path / "late.jsonl"
    late.write_text(json.dumps(order_event(DAGNY, "D-2", "created", "10.00", 0.5, by_id=True)) + "\n")
    result = tracker(other_env, "replay", str(late))
    assert result.returncode == 0, result.stderr + result.stdout
    drain(other, other_settings)
    assert other.dead_letter_page("-", 10) == []
    assert other.orders_summary(DAGNY).totals == {"NOK": "260.00"}
    assert [o.key for o in other.customer_orders(DAGNY)] == ["standard:D-1", "standard:D-2"]


def customers(store: Store) -> dict[str, Any]:
    """The customers' profiles, orders, aliases and ranked sets: to see that a second replay wrote nothing."""
    return contents(store, "t:cust:*:profile", "t:{k*}:order:*", "t:alias:*", "t:{rank}:*", keys.CUSTOMERS)


def test_the_logged_order_events_count_once_whether_applied_before_or_after_the_profile_lines(
        world, store, settings, env, redis_server, tmp_path: Path):
    history(world, store, settings)
    before = read(store, settings)
    path = tmp_path / "export.jsonl"
    assert tracker(env, "export-log", str(path)).returncode == 0
    lines = path.read_text().splitlines()
    profiles = [line for line in lines if json.loads(line)["type"] == "customer.profile"]
    assert len(profiles) == 4

    # Profile lines first (as one replay writes them), then the file again: nothing changes.
    other_env, other_settings, other = replayed(env, redis_server, path, 10)
    held = customers(other)
    again = tracker(other_env, "replay", str(path))
    assert again.returncode == 0, again.stderr
    assert "Restored the profiles of 0 customers (names, ids and orders; 4 held as they are)." in again.stdout
    drain(other, other_settings)
    assert customers(other) == held and read(other, other_settings) == before
    dry = tracker(other_env, "replay", str(path), "--dry-run")
    assert "  profiles to restore      0 (4 held as they are)\n" in dry.stdout, dry.stdout

    # The events first (every other line replayed and applied), then the profile lines: the same numbers.
    events, kept = tmp_path / "events.jsonl", tmp_path / "profiles.jsonl"
    events.write_text("".join(line + "\n" for line in lines if line not in profiles))
    kept.write_text("".join(line + "\n" for line in profiles))
    dry = dry_replay(env, redis_server, path, 11)
    assert "  profiles to restore      4 (0 held as they are)\n" in dry, dry
    late_env, late_settings, late = other_db(redis_server, env, 11)
    for part in (events, kept):
        result = tracker(late_env, "replay", str(part))
        assert result.returncode == 0, result.stderr
        World(None, late, late_env, None, None).send()
    late.keep_risk_ranking(late_settings.at_risk_score)
    assert read(late, late_settings) == before


def test_a_bad_profile_line_is_reported_with_its_number_and_the_others_still_restore(
        world, store, settings, env, redis_server, tmp_path: Path):
    history(world, store, settings)
    path = tmp_path / "export.jsonl"
    assert tracker(env, "export-log", str(path)).returncode == 0
    profiles = [line for line in map(json.loads, path.read_text().splitlines()) if line["type"] == "customer.profile"]
    anna = next(line for line in profiles if line["email"] == ANNA)
    order = anna["orders"][0]
    bad = [{**anna, "email": "nobody"}, {**anna, "orders": [{**order, "total": "lots"}]},
           {**anna, "aliases": {"standard": "c-anna"}}, {**anna, "orders": [{**order, "held": {"refunds": {"r": -1}}}]},
           {**anna, "colour": "blue"}, {**anna, "orders": [{**order, "base": order["refunded"] + 1}]}]
    broken = tmp_path / "bad.jsonl"
    broken.write_text("".join(json.dumps(line) + "\n" for line in (*bad, *profiles)))

    other_env, _, other = other_db(redis_server, env, 12)
    result = tracker(other_env, "replay", str(broken))
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    errors = result.stderr.splitlines()
    assert [error.split(": ")[0] for error in errors] == [f"{broken}:{n}" for n in range(1, 7)], errors
    assert all("not a valid customer.profile line" in error for error in errors), errors
    assert "Restored the profiles of 4 customers" in result.stdout, result.stdout
    assert other.orders_summary(ANNA).totals == {"NOK": "2325.00"}


def test_a_webhook_carrying_a_profile_line_is_ignored_as_survey_sent_is(world, store, settings, env, post_event,
                                                                        tmp_path: Path):
    history(world, store, settings)
    path = tmp_path / "export.jsonl"
    assert tracker(env, "export-log", str(path)).returncode == 0
    line = next(line for line in map(json.loads, path.read_text().splitlines()) if line["type"] == "customer.profile")
    length = store.lag().length
    response = post_event("standard", line)
    assert (response.status_code, response.json) == (200, {"status": "ignored"})
    assert store.lag().length == length


def test_a_customers_one_survey_window_goes_on_in_the_new_install(world, store, settings, env, redis_server,
                                                                    smtp, tmp_path: Path):
    """Anna was surveyed just before the move, under a 30-day throttle: the new install surveys her no sooner than
    the old one would have, and a second replay changes nothing; Bjørn, never surveyed, carries no window."""
    throttled = load_settings({**env, "TRACKER_SURVEY_THROTTLE_DAYS": "30"})
    world.solve("T-W1", ANNA)
    world.event(ticket_event(BJORN, "T-W9", 1))
    drain(store, settings)
    assert [outcome.status for outcome in send_all(store, throttled)] == ["sent"]
    holder, left = store.redis.get(keys.customer(ANNA, "throttle")), store.redis.pttl(keys.customer(ANNA, "throttle"))
    assert holder and left > 29 * 86_400_000
    path = tmp_path / "export.jsonl"
    exported = tracker(env, "export-log", str(path))
    assert exported.returncode == 0, exported.stderr
    lines = {line["email"]: line for line in map(json.loads, path.read_text().splitlines())
             if line["type"] == "customer.profile"}
    assert lines[ANNA]["throttle"]["survey"] == holder and "throttle" not in lines[BJORN]

    other_env, _, other = replayed(env, redis_server, path, 9)
    window = keys.customer(ANNA, "throttle")
    assert other.redis.get(window) == holder
    assert 0 <= left - other.redis.pttl(window) < 120_000  # the same end, less the time the move took
    assert other.redis.exists(keys.customer(BJORN, "throttle")) == 0
    again = tracker(other_env, "replay", str(path))
    assert again.returncode == 0, again.stderr + again.stdout
    assert other.redis.get(window) == holder
    mailed = len(smtp.messages)
    late = tmp_path / "late.jsonl"  # a ticket of Anna's solved in the new install
    late.write_text(json.dumps(solved_event(ticket="T-W2", email_address=ANNA, at=iso(60))) + "\n")
    result = tracker(other_env, "replay", str(late))
    assert result.returncode == 0, result.stderr + result.stdout
    drain(other, throttled)
    assert [(o.status, o.reason) for o in send_all(other, throttled)] == [("skipped", "throttled")]
    assert len(smtp.messages) == mailed
