"""Migrations that mail no one by surprise: too-old solves, dry runs, survey.answered, export-log, CSV imports."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import redis

from tests.support import World, drain, due_score, iso, send_all, solved_event, survey_link, tracker
from tracker.config import Settings, load_settings
from tracker.ingest import apply
from tracker.model import ScoreCard
from tracker.scores.cards import customer_card
from tracker.scores.maths import score_card
from tracker.scores.rebuild import rebuild_scores
from tracker.store import Store, keys

DAY = 86_400


def answered_event(ticket: str, rating: int, at: str, event_id: str, email: str = "kari@example.no",
                   scale: str = "csat5", **answer: Any) -> dict[str, Any]:
    """Build a survey.answered standard event (SPEC §10)."""
    return {"type": "survey.answered", "id": event_id, "occurred_at": at,
            "ticket": {"id": ticket, "team": "billing", "brand": "acme", "agent": {"id": "a-7", "name": "Ola"}},
            "customer": {"email": email}, "answer": {"rating": rating, "scale": scale, **answer}}


def scores(store: Store, settings: Settings, now_ms: int) -> dict[str, Any]:
    """Every aggregate's score card and every customer's card: what leads can read."""
    cards: dict[str, Any] = {}
    for kind in keys.AGGREGATE_KINDS:
        for ident, agg in store.aggregates(kind, ["all"] if kind == "overall" else store.ids(kind)):
            cards[f"{kind}:{ident}"] = score_card(ident, agg, now_ms)
    for email in store.ids("customer"):
        cards[f"card:{email}"] = customer_card(store, settings, email, now_ms)
    return cards


def other_db(redis_server: str, env: dict[str, str], db: int) -> tuple[dict[str, str], Settings, Store]:
    """Return the environment, settings and store of another, empty, Redis database."""
    url = f"{redis_server}/{db}"
    redis.Redis.from_url(url).flushdb()
    other = {**env, "TRACKER_REDIS_URL": url}
    settings = load_settings(other)
    return other, settings, Store.from_url(url)


def dry_replay(env: dict[str, str], redis_server: str, path: Path, db: int) -> str:
    """Run `tracker replay --dry-run` of an export-log file against another, empty, database; check it wrote nothing
    there, not even the layout mark, and return what it printed."""
    empty = redis.Redis.from_url(f"{redis_server}/{db}")
    empty.flushdb()
    dry = tracker({**env, "TRACKER_REDIS_URL": f"{redis_server}/{db}"}, "replay", str(path), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert empty.keys("*") == [], "a dry run wrote to the database"
    return dry.stdout


def replayed(env: dict[str, str], redis_server: str, path: Path, db: int) -> tuple[dict[str, str], Settings, Store]:
    """Replay an export-log file into another, empty, database with `tracker replay`, then apply it as the workers do
    and let the sweep run once; return that database's environment, settings and store."""
    other_env, other_settings, other = other_db(redis_server, env, db)
    result = tracker(other_env, "replay", str(path))
    assert result.returncode == 0, result.stderr + result.stdout
    World(None, other, other_env, None, None).send()  # the workers apply the log; the sweep runs once
    return other_env, other_settings, other


def surveys_of(store: Store, email: str) -> list[tuple[str, str | None]]:
    return [(survey.status, survey.reason) for survey in store.customer_surveys(email)]


def test_a_solve_whose_survey_would_have_expired_is_skipped_as_too_old_and_nobody_is_mailed(
        post_event, store, settings, smtp):
    old = solved_event(ticket="OLD-1", email_address="old@example.no", at=iso(60 * DAY))
    recent = solved_event(ticket="NEW-1", email_address="new@example.no", at=iso(3600))
    assert post_event("standard", old).status_code == 202
    assert post_event("standard", recent).status_code == 202
    drain(store, settings)
    assert due_score(store, "standard:OLD-1") is None
    assert surveys_of(store, "old@example.no") == [("skipped", "too_old")]
    assert [outcome.status for outcome in send_all(store, settings)] == ["sent"]
    assert [message["To"].addresses[0].addr_spec for message in smtp.wait_for(1)] == ["new@example.no"]
    assert store.stats().get("skipped:too_old") == 1


def test_replay_dry_run_says_what_would_change_and_changes_nothing(env, tmp_path, store):
    lines = [json.dumps(solved_event(ticket="D-1", email_address="d1@example.no", at=iso(60 * DAY))),
             json.dumps(solved_event(ticket="D-2", email_address="d2@example.no", at=iso(3600))),
             json.dumps(answered_event("D-3", 5, iso(7200), "ans-d3")),
             "{not json"]
    path = tmp_path / "events.jsonl"
    path.write_bytes("\n".join(lines).encode() + b"\n\xff\xfe broken\n")
    dry = tracker(env, "replay", str(path), "--dry-run")
    assert dry.returncode == 1, dry.stderr
    assert "Traceback" not in dry.stderr
    assert f"{path}:4: not valid JSON" in dry.stderr and f"{path}:5: not UTF-8 text" in dry.stderr
    assert "3 events would be appended" in dry.stdout
    assert "ticket.solved     2" in dry.stdout and "survey.answered   1" in dry.stdout
    assert "surveys to schedule      1" in dry.stdout and "surveys too old to send  1" in dry.stdout
    assert "answers to count         1" in dry.stdout
    assert store.lag().length == 0 and not store.ticket("standard:D-2")
    real = tracker(env, "replay", str(path))
    assert "Appended 3 events" in real.stdout and store.lag().length == 3


def test_replay_refuses_an_unknown_source_naming_the_known_ones(env, tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps(solved_event()) + "\n")
    refused = tracker(env, "replay", str(path), "--source", "zendsk")
    assert refused.returncode == 1 and "unknown source 'zendsk'" in refused.stderr
    assert "zendesk" in refused.stderr and "standard" in refused.stderr and "Traceback" not in refused.stderr


def test_a_survey_answered_event_counts_once_per_ticket_the_latest_wins_in_any_order(
        post_event, store, settings, redis_server, env, smtp):
    first = answered_event("A-1", 2, "2026-11-20T10:00:00Z", "ans-1", comment="slow")
    later = answered_event("A-1", 5, "2026-11-21T10:00:00Z", "ans-2", comment="sorted now")
    for body in (first, later, later):  # in order, with a duplicate
        assert post_event("standard", body).status_code in (200, 202)
        drain(store, settings)
    other_env, other_settings, other = other_db(redis_server, env, 1)
    for body in (later, first):  # out of order, through replay's path
        assert tracker(other_env, "replay", "/dev/stdin", stdin=json.dumps(body)).returncode == 0
        drain(other, other_settings)
    now = int(time.time() * 1000)
    card = customer_card(store, settings, "kari@example.no", now)
    assert card is not None and card.responses == 1 and card.surveys_sent == 1 and card.average == 100.0
    assert scores(store, settings, now) == scores(other, other_settings, now)
    [answer] = store.customer_responses("kari@example.no")
    assert (answer.rating, answer.comment, answer.team, answer.agent) == (5, "sorted now", "billing", "standard:a-7")
    assert send_all(store, settings) == [] and smtp.messages == []  # no survey mail, no throttle taken
    rebuild_scores(store, settings)
    assert scores(store, settings, now)["card:kari@example.no"] == card


def test_an_answer_collected_elsewhere_stops_our_survey_for_that_ticket(post_event, store, settings, smtp):
    assert post_event("standard", solved_event(ticket="B-1", at=iso(600))).status_code == 202
    assert post_event("standard", answered_event("B-1", 4, iso(300), "ans-b1")).status_code == 202
    drain(store, settings)
    assert [outcome.reason for outcome in send_all(store, settings)] == ["already_surveyed"]
    assert smtp.messages == []


def test_an_answer_collected_elsewhere_about_the_solve_leaves_nothing_due_and_the_ticket_a_lifetime(
        post_event, store, settings, smtp):
    solved = iso(600)
    assert post_event("standard", solved_event(ticket="C-1", at=solved)).status_code == 202
    answered = answered_event("C-1", 4, iso(300), "ans-c1", solved_at=solved)
    answered["customer"]["id"] = "c-42"  # the solve's customer id: one log shard, applied in order
    assert post_event("standard", answered).status_code == 202
    drain(store, settings)
    tkey = "standard:C-1"
    assert store.redis.zscore(keys.due_of(tkey), tkey) is None
    # Kept while the answer may change (until the survey expires), then gone: never a ticket without a TTL.
    expires = store.survey(store.ticket(tkey)["survey_sid"]).expires_at_ms
    for key in (keys.ticket(tkey), keys.ticket_history(tkey)):
        assert expires - 60_000 < int(time.time() * 1000) + store.redis.pttl(key) <= expires
    assert send_all(store, settings) == [] and smtp.messages == []
    assert [a.rating for a in store.customer_responses("kari@example.no")] == [4]


def build_history(client, post_event, store: Store, settings: Settings, smtp, env: dict[str, str],
                  tmp_path: Path) -> None:
    """Tickets, orders, surveys answered on our page, throttled and too old, answers collected elsewhere."""
    for n in range(4):
        body = solved_event(ticket=f"H-{n}", email_address=f"h{n % 2}@example.no", at=iso(3600 + n),
                            agent={"id": f"a-{n}", "name": f"Agent {n}"}, team=f"team-{n % 2}")
        assert post_event("standard", body).status_code == 202
    order = {"type": "order.created", "id": "o-1", "occurred_at": iso(5000), "customer": {"email": "h0@example.no"},
             "order": {"id": "O-1", "total": "149.00", "currency": "NOK"}}
    assert post_event("standard", order).status_code == 202
    assert post_event("standard", solved_event(ticket="OLD", email_address="h1@example.no",
                                               at=iso(90 * DAY))).status_code == 202
    assert post_event("standard", answered_event("X-9", 1, iso(100), "ans-x9", email="h1@example.no",
                                                 comment="elsewhere")).status_code == 202
    ratings = tmp_path / "ratings.csv"
    ratings.write_text(f"email,rating,scale,answered_at,ticket\nh0@example.no,3,csat3,{iso(200)},CSV-1\n")
    assert tracker(env, "import-ratings", str(ratings)).returncode == 0
    drain(store, settings)
    sent = [outcome.status for outcome in send_all(store, settings)]
    assert sent.count("sent") == 2, sent  # the throttle lets one survey a customer through
    for message, rating in zip(smtp.wait_for(2), (2, 5), strict=True):
        path = survey_link(message, rating)
        assert client.post(path, data={"rating": str(rating), "comment": "thanks"}).status_code == 200


def test_export_log_and_replay_into_an_empty_redis_give_identical_scores(
        client, post_event, store, settings, smtp, env, redis_server, tmp_path: Path):
    smtp_count = 2
    build_history(client, post_event, store, settings, smtp, env, tmp_path)
    now = int(time.time() * 1000)
    live = scores(store, settings, now)
    assert live["overall:all"].responses == 4 and live["overall:all"].surveys_sent == 4
    assert live["source:import"].responses == 1
    path = tmp_path / "export.jsonl"
    exported = tracker(env, "export-log", str(path))
    assert exported.returncode == 0, exported.stderr
    assert "4 answers" in exported.stdout
    other_env, other_settings, other = other_db(redis_server, env, 2)
    replayed = tracker(other_env, "replay", str(path))
    assert replayed.returncode == 0, replayed.stderr + replayed.stdout
    drain(other, other_settings)
    assert scores(other, other_settings, now) == live
    assert all(outcome.status != "sent" for outcome in send_all(other, other_settings))
    assert len(smtp.messages) == smtp_count  # the replay mailed nobody
    rebuild_scores(other, other_settings)
    assert scores(other, other_settings, now) == live
    again = tracker(other_env, "replay", str(path))  # replaying twice counts nothing twice
    assert "Appended 0 events" in again.stdout
    drain(other, other_settings)
    assert scores(other, other_settings, now) == live


CSV = """email,rating,scale,answered_at,ticket,source,agent,team,comment
kari@example.no,4,csat5,2026-10-01T09:00:00Z,Z-1,zendesk,ola,billing,Fine
kari@example.no,9,csat5,2026-10-01T09:00:00Z,Z-2,zendesk,ola,billing,
per@example.no,10,nps,2026-10-02T09:00:00Z,Z-3,zendesk,,support,"Great, really"
,3,csat5,2026-10-02T09:00:00Z,Z-4,zendesk,,,
per@example.no,3,csat5,yesterday,Z-5,zendesk,,,
"""


def test_import_ratings_loads_good_rows_reports_bad_ones_and_counts_a_second_import_once(
        env, tmp_path, store, settings, smtp):
    path = tmp_path / "ratings.csv"
    path.write_bytes(CSV.encode() + b"ola@example.no,5,csat5,2026-10-03T09:00:00Z,Z-6,zendesk,,,caf\xe9\n")
    dry = tracker(env, "import-ratings", str(path), "--dry-run")
    assert "2 ratings would be imported" in dry.stdout and store.lag().length == 0
    first = tracker(env, "import-ratings", str(path))
    assert first.returncode == 1 and "Traceback" not in first.stderr
    assert f"{path}:3: rating: Must be between 1 and 5 on csat5." in first.stderr
    assert f"{path}:5: email is empty" in first.stderr
    assert f"{path}:6: answered_at: Not a valid datetime." in first.stderr
    assert f"{path}:7: not UTF-8 text" in first.stderr
    assert "2 ratings imported, 0 already imported, 4 rows rejected" in first.stdout
    second = tracker(env, "import-ratings", str(path))
    assert "0 ratings imported, 2 already imported" in second.stdout
    drain(store, settings)
    now = int(time.time() * 1000)
    kari, per = (customer_card(store, settings, email, now) for email in ("kari@example.no", "per@example.no"))
    assert kari is not None and per is not None
    assert (kari.responses, kari.average, per.responses, per.nps) == (1, 75.0, 1, 100.0)
    assert store.aggregate("team", "support").n == 1 and store.aggregate("agent", "zendesk:ola").n == 1
    before = scores(store, settings, now)
    assert isinstance(before["source:zendesk"], ScoreCard) and before["source:zendesk"].responses == 2
    rebuild_scores(store, settings)
    assert scores(store, settings, now) == before
    assert send_all(store, settings) == [] and smtp.messages == []


def test_a_value_over_the_csv_field_limit_rejects_its_row_alone(env, tmp_path, store):
    path = tmp_path / "ratings.csv"
    huge = "x" * 200_000  # over the csv module's field limit (131,072 characters)
    path.write_text("email,rating,scale,answered_at,comment\n"
                    "kari@example.no,4,csat5,2026-10-01T09:00:00Z,Fine\n"
                    f"per@example.no,3,csat5,2026-10-01T09:00:00Z,{huge}\n"
                    "ola@example.no,5,csat5,2026-10-02T09:00:00Z,\n")
    dry = tracker(env, "import-ratings", str(path), "--dry-run")
    assert dry.returncode == 1 and "Traceback" not in dry.stderr, dry.stderr
    assert f"{path}:3: not a CSV row (field larger than field limit" in dry.stderr
    assert "2 ratings would be imported, 0 already imported, 1 row rejected" in dry.stdout
    path.write_text(f"email,rating,scale,answered_at,{huge}\n")
    header = tracker(env, "import-ratings", str(path))
    assert header.returncode == 1 and header.stderr.count("\n") == 1 and "Traceback" not in header.stderr
    assert "the first line is not a CSV row naming the columns" in header.stderr
    assert store.lag().length == 0


def test_a_redis_written_with_the_previous_key_layout_is_refused_at_start_up_with_the_way_over(env, store):
    store.redis.zadd("t:due", {"zendesk:1001": 1})  # the single due set of the layout before the cluster one
    for command in ("worker", "beat", "web"):
        started = tracker(env, command)
        assert started.returncode == 2, started.stderr
        assert started.stderr.count("\n") == 1 and "Traceback" not in started.stderr
        assert "earlier version" in started.stderr and "tracker export-log" in started.stderr
    check = tracker(env, "check")
    assert check.returncode == 1 and "tracker replay" in check.stdout + check.stderr
    store.redis.delete("t:due")
    assert "earlier version" not in (tracker(env, "check").stdout + tracker(env, "check").stderr)


def test_a_history_file_whose_answers_name_only_their_ticket_counts_each_answer_for_its_tickets_agent_and_team(
        env, tmp_path, store, settings):
    # A helpdesk's history as a migration writes it: each solve, then its answer naming only the ticket and the
    # customer. Replayed in the file's order, each answer finds its ticket's agent, team, brand, channel and tags, as
    # it did when live, however the drain's batches (BATCH entries of a shard) cut the customer's lines.
    tickets = apply.BATCH + 10
    lines = []
    for n in range(tickets):
        solved = solved_event(ticket=f"H-{n}", at=iso(20 * DAY + 60 * n), agent={"id": f"a-{n % 2}", "name": "Ola"},
                              team=("billing", "tech")[n % 2])
        lines.append(solved)
        lines.append({"type": "survey.answered", "id": f"ans-h{n}", "occurred_at": iso(20 * DAY + 60 * n - 3600),
                      "customer": {"id": "c-42", "email": "kari@example.no"}, "ticket": {"id": f"H-{n}"},
                      "answer": {"rating": 5, "scale": "csat5"}})
    path = tmp_path / "history.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    replayed = tracker(env, "replay", str(path))
    assert replayed.returncode == 0, replayed.stderr
    drain(store, settings)
    counted = {f"{kind}:{ident}": agg.n for kind in ("agent", "team", "brand", "channel", "tag", "overall")
               for ident, agg in store.aggregates(kind, ["all"] if kind == "overall" else store.ids(kind))}
    half = tickets // 2
    assert counted == {"agent:standard:a-0": half, "agent:standard:a-1": half, "team:billing": half,
                       "team:tech": half, "brand:acme": tickets, "channel:email": tickets, "tag:vip": tickets,
                       "overall:all": tickets}
