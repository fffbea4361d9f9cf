"""The leads' API v1 through the real app, Redis and the whole loop: scores everywhere, at risk, summary, export."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, event, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.support import World, drain, fresh_database, indexed, iso, send_all, solved_event, zendesk_body
from tests.test_dashboard import sign_in
from tracker.answers.record import record_answer
from tracker.config import load_settings
from tracker.model import COUNTS, Aggregate, ScoreCard, Survey
from tracker.scales import SCALES
from tracker.scores.maths import DAY_MS, score_card
from tracker.scores.ranking import KINDS, aggregate_list
from tracker.scores.rebuild import rebuild_scores
from tracker.scores.summary import Facets, summary
from tracker.store import keys
from tracker.web.app import create_app
from tracker.web.dashboard.data import comments_of, latest_comments

ISO = "%Y-%m-%dT%H:%M:%SZ"


@pytest.fixture
def auth(store) -> dict[str, str]:
    return {"Authorization": f"Bearer {store.create_key('lead')}"}


def get(client: Any, auth: dict[str, str], path: str, **query: Any) -> Any:
    response = client.get(path, headers=auth, query_string=query)
    assert response.status_code == 200, (path, response.status_code, response.get_data(as_text=True)[:500])
    return response.json


def walk(client: Any, auth: dict[str, str], path: str, key: str, **query: Any) -> list[Any]:
    """Follow next_cursor to the end and return every item in order."""
    items: list[Any] = []
    cursor = None
    for _ in range(100):
        page = get(client, auth, path, **query, **({"cursor": cursor} if cursor else {}))
        items += page[key]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("the cursor never ended")


# Agents, teams, sources and brands ----------------------------------------------------------------

def test_agents_teams_sources_and_brands_carry_every_score_field_and_agents_their_names(world, client, auth):
    world.solved_and_answered("T-1", "kari@example.no", 5, agent={"id": "a-7", "name": "Ola"})
    world.solved_and_answered("T-2", "per@example.no", 2, agent={"id": "a-7", "name": "Ola N."}, team="tech")
    world.event(zendesk_body("901", "liv@example.no", brand="Zeta", team="Billing"), source="zendesk")
    assert world.send() == ["sent"]
    world.answer("liv@example.no", 4)

    agents = get(client, auth, "/api/v1/agents")["agents"]
    assert [a["id"] for a in agents] == ["standard:a-7", "zendesk:90817263"]
    ola = agents[0]
    assert ola["name"] == "Ola N." and agents[1]["name"] == "Ola Agent"
    assert set(ola) == {"id", "name", "score", "average", "csat", "responses", "surveys_sent", "response_rate",
                        "trend", "nps"}
    assert ola["responses"] == 2 and ola["average"] == 62.5 and ola["csat"] == 50.0
    assert ola["surveys_sent"] == 2 and ola["response_rate"] == 100.0 and ola["nps"] is None and ola["trend"] is None
    assert get(client, auth, "/api/v1/agents/standard:a-7") == ola

    teams = {t["id"]: t for t in get(client, auth, "/api/v1/teams")["teams"]}
    assert teams["billing"]["responses"] == 1 and teams["tech"]["average"] == 25.0
    assert teams["Billing"]["responses"] == 1 and teams["Billing"]["name"] == "Billing"
    sources = {s["id"]: s for s in get(client, auth, "/api/v1/sources")["sources"]}
    assert sources["standard"]["responses"] == 2 and sources["zendesk"]["average"] == 75.0
    brands = {b["id"]: b for b in get(client, auth, "/api/v1/brands")["brands"]}
    assert brands["acme"]["responses"] == 2 and brands["Zeta"]["csat"] == 100.0
    assert get(client, auth, "/api/v1/brands/Zeta") == brands["Zeta"]


def test_aggregate_lists_page_with_a_cursor(world, client, auth):
    for n in range(3):
        world.solved_and_answered(f"T-{n}", f"c{n}@example.no", 5, team=f"team-{n}")
    teams = walk(client, auth, "/api/v1/teams", "teams", limit=2)
    assert sorted(t["id"] for t in teams) == ["team-0", "team-1", "team-2"]


@pytest.mark.parametrize("path", ["/api/v1/agents/standard:nobody", "/api/v1/teams/none", "/api/v1/sources/nope",
                                  "/api/v1/brands/nope", "/api/v1/customers/nobody@example.no"])
def test_an_unknown_id_is_404_with_the_envelope(client, auth, path):
    response = client.get(path, headers=auth)
    assert response.status_code == 404 and response.json["code"] == 404 and response.json["message"]


def test_the_agent_and_team_at_send_time_keep_the_answer_when_the_solve_unassigned_them(world, client, auth):
    world.event(solved_event(ticket="T-5", email_address="kari@example.no", at=iso(120), kind="ticket.updated",
                             agent={"id": "a-9", "name": "Siv"}, team="tech"))
    world.event(solved_event(ticket="T-5", email_address="kari@example.no", at=iso(60), agent=None, team=""))
    assert world.send() == ["sent"]
    world.event(solved_event(ticket="T-5", email_address="kari@example.no", at=iso(30), kind="ticket.closed",
                             agent={"id": "a-10", "name": "Bo"}, team="sales"))
    drain(world.store, world.settings)
    world.answer("kari@example.no", 5)
    agents = {a["id"]: a for a in get(client, auth, "/api/v1/agents")["agents"]}
    assert agents["standard:a-9"]["responses"] == 1 and agents["standard:a-9"]["name"] == "Siv"
    assert "standard:a-10" not in agents
    assert get(client, auth, "/api/v1/teams/tech")["responses"] == 1
    assert client.get("/api/v1/teams/sales", headers=auth).status_code == 404


ODD_TEAMS = ("/ops", "ops/", "a/b", "a//b", "x%2Fy", "50%", "sp ace", "#1", "?q")


def test_every_team_listed_has_an_address_of_its_own_whatever_its_name_holds(world, client, auth):
    """A name from outside may start or end with a slash, hold two, or look percent-encoded: each id the list
    gives, percent-encoded whole, reads that entity (a leading slash once fell to the catch-all 404)."""
    for i, team in enumerate(ODD_TEAMS):
        world.event(solved_event(ticket=f"T-{i}", email_address=f"k{i}@example.no", at=iso(60), team=team))
    assert world.send() == ["sent"] * len(ODD_TEAMS)
    for i in range(len(ODD_TEAMS)):
        world.answer(f"k{i}@example.no", 5)
    listed = [team["id"] for team in get(client, auth, "/api/v1/teams")["teams"]]
    assert sorted(listed) == sorted(ODD_TEAMS)
    for team in listed:
        detail = get(client, auth, "/api/v1/teams/" + quote(team, safe=""))
        assert (detail["id"], detail["responses"]) == (team, 1), team


# Ranked customers and at risk ---------------------------------------------------------------------

@pytest.fixture
def ranked(world) -> World:
    """Six customers: ratings 1..5 on csat5 (two with 2), one with only an order."""
    for n, (email, rating) in enumerate([("a@x.test", 5), ("b@x.test", 2), ("c@x.test", 1), ("d@x.test", 4),
                                         ("e@x.test", 2), ("f@x.test", 3)]):
        world.solved_and_answered(f"R-{n}", email, rating)
    world.order("O-g", "g@x.test", "10.00")
    drain(world.store, world.settings)
    return world


def test_customers_come_ranked_by_score_and_the_cursor_walks_each_once(ranked, client, auth):
    cards = walk(client, auth, "/api/v1/customers", "customers", sort="score", order="asc", limit=2)
    assert [c["customer"] for c in cards] == ["c@x.test", "b@x.test", "e@x.test", "f@x.test", "d@x.test",
                                              "a@x.test", "g@x.test"]
    assert cards[-1]["score"] is None and cards[0]["score"] == 0.0
    down = walk(client, auth, "/api/v1/customers", "customers", order="desc", limit=3)
    assert [c["customer"] for c in down] == ["a@x.test", "d@x.test", "f@x.test", "b@x.test", "e@x.test",
                                             "c@x.test", "g@x.test"]


def test_customers_sort_by_responses_recency_and_value(ranked, client, auth):
    ranked.solved_and_answered("R-9", "f@x.test", 5)
    ranked.order("O-d", "d@x.test", "900.00")
    ranked.order("O-b", "b@x.test", "50.00")
    drain(ranked.store, ranked.settings)
    by_responses = get(client, auth, "/api/v1/customers", sort="responses")["customers"]
    assert by_responses[0]["customer"] == "f@x.test" and by_responses[0]["responses"] == 2
    recent = get(client, auth, "/api/v1/customers", sort="recent", limit=2)["customers"]
    assert [c["customer"] for c in recent] == ["f@x.test", "e@x.test"]
    oldest = walk(client, auth, "/api/v1/customers", "customers", sort="recent", order="asc", limit=4)
    assert oldest[0]["customer"] == "a@x.test" and oldest[-1]["customer"] == "g@x.test"
    value = get(client, auth, "/api/v1/customers", sort="value", limit=3)["customers"]
    assert [c["customer"] for c in value] == ["d@x.test", "b@x.test", "g@x.test"]


def test_at_risk_lists_unhappy_customers_by_what_they_are_worth_then_by_how_recently_it_went_wrong(ranked, client,
                                                                                                      auth):
    for email, total in (("b@x.test", "500.00"), ("e@x.test", "500.00"), ("c@x.test", "80.00"),
                         ("a@x.test", "9000.00")):
        ranked.order(f"O-{email[0]}", email, total)
    drain(ranked.store, ranked.settings)
    at_risk = walk(client, auth, "/api/v1/customers", "customers", at_risk="true", limit=1)
    # b and e are worth the same; e's unhappy answer is the more recent one.
    assert [c["customer"] for c in at_risk] == ["e@x.test", "b@x.test", "c@x.test"]
    assert all(c["at_risk"] for c in at_risk) and at_risk[0]["orders"]["total"] == "500.00"
    fine = walk(client, auth, "/api/v1/customers", "customers", at_risk="false")
    assert sorted(c["customer"] for c in fine) == ["a@x.test", "d@x.test", "f@x.test", "g@x.test"]
    assert not any(c["at_risk"] for c in fine)
    by_score = get(client, auth, "/api/v1/customers", at_risk="true", sort="score", order="asc")["customers"]
    assert [c["customer"] for c in by_score] == ["c@x.test", "b@x.test", "e@x.test"]


def test_the_at_risk_line_follows_the_setting(ranked, env, store, auth):
    at_risk = load_settings({**env, "TRACKER_AT_RISK_SCORE": "80"})
    client = create_app(at_risk, store, enqueue=lambda task: None).test_client()
    cards = get(client, auth, "/api/v1/customers", at_risk="true")["customers"]
    assert sorted(c["customer"] for c in cards) == ["b@x.test", "c@x.test", "d@x.test", "e@x.test", "f@x.test"]


@pytest.mark.parametrize("cursor", ["x", "e30", "bm9wZQ", "W10"])
def test_a_cursor_that_is_not_from_this_listing_is_422(ranked, client, auth, cursor):
    response = client.get("/api/v1/customers", headers=auth, query_string={"cursor": cursor})
    assert response.status_code == 422 and "cursor" in response.json["errors"]


def test_a_cursor_of_one_sort_does_not_continue_another(ranked, client, auth):
    cursor = get(client, auth, "/api/v1/customers", sort="score", limit=1)["next_cursor"]
    response = client.get("/api/v1/customers", headers=auth, query_string={"sort": "value", "cursor": cursor})
    assert response.status_code == 422 and "cursor" in response.json["errors"]


# Summary, responses and the export ----------------------------------------------------------------

def _day(days_ago: int) -> str:
    return (datetime.now(tz=UTC).date() - timedelta(days=days_ago)).isoformat()


@pytest.fixture
def history(world) -> World:
    """Answers spread over 40 days, on two sources, two brands and two scales."""
    now = int(time.time() * 1000)
    plan = [("T-1", "kari@example.no", "standard", "csat5", 5, 35),
            ("T-2", "per@example.no", "standard", "csat5", 2, 3),
            ("T-3", "liv@example.no", "standard", "nps", 10, 3),
            ("901", "ola@example.no", "zendesk", "nps", 4, 0)]
    for n, (ticket, email, source, scale, rating, days_ago) in enumerate(plan):
        if source == "zendesk":
            world.event(zendesk_body(ticket, email, brand="Zeta"), source="zendesk")
        else:
            world.solve(ticket, email)
        assert world.send(scale) == ["sent"]
        # A second apart, so answers of one day keep the plan's order.
        world.answer_at(email, rating, now - days_ago * DAY_MS - (len(plan) - n) * 1000, comment=f"about {ticket}")
    return world


def test_the_summary_has_a_series_per_day_a_split_per_source_and_the_ratings_given(history, client, auth):
    body = get(client, auth, "/api/v1/summary", **{"from": _day(6), "to": _day(0)})
    assert body["from"] == _day(6) and body["to"] == _day(0)
    assert [d["date"] for d in body["series"]] == [_day(n) for n in range(6, -1, -1)]
    day3 = body["series"][3]
    assert day3 == {"date": _day(3), "responses": 2, "average": 62.5, "csat": 50.0}
    assert body["series"][0] == {"date": _day(6), "responses": 0, "average": None, "csat": None}
    assert body["responses"] == 3 and body["nps"] == 0.0 and body["surveys_sent"] == 4
    assert set(body["by_source"]) == {"standard", "zendesk"}
    assert body["by_source"]["zendesk"]["responses"] == 1 and body["by_source"]["zendesk"]["nps"] == -100.0
    assert body["distribution"]["csat5"] == {"1": 0, "2": 1, "3": 0, "4": 0, "5": 0}
    assert body["distribution"]["nps"]["10"] == 1 and body["distribution"]["nps"]["4"] == 1


def test_the_summary_of_all_time_equals_the_overall_aggregate(history, client, auth, store):
    body = get(client, auth, "/api/v1/summary")
    overall = score_fields(score_card("all", store.aggregate("overall", "all"), int(time.time() * 1000)))
    assert overall["trend"] is not None
    assert {k: body[k] for k in overall} == overall
    assert body["from"] == _day(35) and body["to"] == _day(0) and len(body["series"]) == 36


@pytest.mark.parametrize(("query", "responses"), [
    ({"source": "zendesk"}, 1), ({"brand": "acme"}, 3), ({"team": "billing"}, 3), ({"scale": "nps"}, 2),
    ({"agent": "standard:a-7"}, 3), ({"agent": "zendesk:90817263", "scale": "csat5"}, 0), ({"team": "none"}, 0)])
def test_summary_filters_narrow_every_number(history, client, auth, query, responses):
    body = get(client, auth, "/api/v1/summary", **{"from": _day(40), **query})
    assert body["responses"] == responses
    assert sum(d["responses"] for d in body["series"]) == responses
    assert sum(sum(c.values()) for c in body["distribution"].values()) == responses
    assert body["filters"] == query


def test_a_team_brand_or_channel_as_long_as_an_event_may_send_is_a_filter_the_api_and_the_dashboard_take(
        world, client, auth, store):
    long = {"team": "t" * 500, "brand": "b" * 320, "channel": "c" * 201}
    world.solved_and_answered("T-9", "kari@example.no", 4, **long)
    sign_in(client, store.create_key("dashboard"))
    for name, value in long.items():
        assert get(client, auth, "/api/v1/summary", **{name: value})["responses"] == 1
        assert get(client, auth, "/api/v1/customers", **{name: value})["customers"][0]["customer"] == "kari@example.no"
        page = client.get("/dashboard", query_string={name: value})
        assert page.status_code == 200, (name, page.get_data(as_text=True)[:300])
    assert client.get("/dashboard", query_string={"team": "t" * 501}).status_code == 400


def test_latest_comments_come_newest_first_within_filters_and_range(history, store):
    rows = latest_comments(store, None, None, Facets())
    assert rows[0].customer == "ola@example.no" and len(rows) == 4
    assert rows[0].comment == "about 901" and rows[-1].customer == "kari@example.no"
    assert [r.customer for r in latest_comments(store, None, None, Facets(scale="csat5"))] == ["per@example.no",
                                                                                             "kari@example.no"]
    assert len(latest_comments(store, None, None, Facets(), limit=1)) == 1
    recent = latest_comments(store, datetime.now(tz=UTC).date() - timedelta(days=10), None, Facets())
    assert "kari@example.no" not in [r.customer for r in recent] and len(recent) == 3
    # The search reads at most `scan` answers, newest first, and says when it stopped short.
    assert comments_of(store, None, None, Facets(), scan=4) == (rows, True)
    assert comments_of(store, None, None, Facets(scale="csat5"), scan=2) == ([], False)  # ola's and liv's: nps
    assert comments_of(store, None, None, Facets(scale="csat5"), scan=3) == (rows[2:3], False)
    assert comments_of(store, None, None, Facets(scale="csat5"), scan=100)[1] is True


def test_a_customers_answers_can_be_narrowed_by_range_and_filters(world, client, auth):
    now = int(time.time() * 1000)
    for n, (scale, rating, days_ago) in enumerate([("csat5", 5, 10), ("nps", 9, 5), ("csat5", 1, 1)]):
        world.solve(f"K-{n}", "kari@example.no", brand="acme" if n else "zeta")
        world.send(scale)
        world.answer_at("kari@example.no", rating, now - days_ago * DAY_MS)
    path = "/api/v1/customers/kari@example.no/responses"
    assert [r["rating"] for r in walk(client, auth, path, "responses", limit=1)] == [1, 9, 5]
    assert [r["rating"] for r in walk(client, auth, path, "responses", limit=1, scale="csat5")] == [1, 5]
    assert [r["rating"] for r in get(client, auth, path, brand="zeta")["responses"]] == [5]
    assert [r["rating"] for r in get(client, auth, path, **{"from": _day(6), "to": _day(2)})["responses"]] == [9]


def test_reading_answers_in_batches_visits_each_once_even_when_many_share_a_millisecond(store, settings):
    at = int(time.time() * 1000)
    for n in range(7):
        survey = Survey(sid=f"s{n}", customer="kari@example.no", source="standard", scale="csat5",
                        tkey=f"standard:T-{n}", kind="ticket", status="sent")
        stamp = at if n < 5 else at + n
        store.create_survey(survey)  # an answer is recorded only for a survey that exists
        store.record_answer(survey, 5, "", stamp,
                            Aggregate.of_answer(SCALES["csat5"], 5, stamp, settings.score_half_life_days))
    for batch in (1, 2, 3, 500):
        oldest = [a.sid for a in store.answers_between("-inf", "+inf", batch=batch)]
        assert oldest == ["s0", "s1", "s2", "s3", "s4", "s5", "s6"], batch
        newest = [a.sid for a in store.answers_between("-inf", "+inf", newest_first=True, batch=batch)]
        assert newest == ["s6", "s5", "s4", "s3", "s2", "s1", "s0"], batch


def test_the_csv_export_streams_every_answer_and_defuses_formulas(history, world, client, auth):
    world.solve("T-9", "eve@example.no")
    world.send()
    world.answer("eve@example.no", 1, '=HYPERLINK("http://evil.test","click"), "quoted"\nsecond line')
    response = client.get("/api/v1/export/responses.csv", headers=auth)
    assert response.status_code == 200 and response.is_streamed
    assert response.mimetype == "text/csv" and "attachment" in response.headers["Content-Disposition"]
    text = response.get_data(as_text=True)
    assert text.startswith("at,survey,customer,ticket,") and "\r\n" in text
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert [r["customer"] for r in rows] == ["kari@example.no", "per@example.no", "liv@example.no",
                                             "ola@example.no", "eve@example.no"]
    assert rows[-1]["comment"] == '\'=HYPERLINK("http://evil.test","click"), "quoted"\nsecond line'
    assert rows[0]["rating"] == "5" and rows[0]["scale"] == "csat5" and rows[0]["satisfied"] == "true"
    assert rows[3]["source"] == "zendesk" and rows[3]["agent_name"] == "Ola Agent"
    narrowed = client.get("/api/v1/export/responses.csv", headers=auth,
                          query_string={"from": _day(4), "to": _day(1), "scale": "csat5"}).get_data(as_text=True)
    assert [r["customer"] for r in csv.DictReader(io.StringIO(narrowed, newline=""))] == ["per@example.no"]


def test_an_empty_export_is_just_the_header_whatever_the_range(client, auth):
    response = client.get("/api/v1/export/responses.csv", headers=auth)
    assert response.status_code == 200 and response.get_data(as_text=True).count("\r\n") == 1
    decades = client.get("/api/v1/export/responses.csv", headers=auth,
                         query_string={"from": "1990-01-01", "to": "2030-12-31"})
    assert decades.status_code == 200 and decades.get_data(as_text=True).startswith("at,survey,")


@pytest.mark.parametrize(("path", "query", "field"), [
    ("/api/v1/summary", {"from": "2026-13-01"}, "from"), ("/api/v1/summary", {"to": "yesterday"}, "to"),
    ("/api/v1/summary", {"from": "2026-05-02", "to": "2026-05-01"}, "from"),
    ("/api/v1/summary", {"from": "1990-01-01", "to": "2026-01-01"}, "from"),
    ("/api/v1/summary", {"scale": "stars"}, "scale"), ("/api/v1/summary", {"source": ""}, "source"),
    ("/api/v1/export/responses.csv", {"to": "2026-02-30"}, "to"),
    ("/api/v1/customers", {"sort": "name"}, "sort"), ("/api/v1/customers", {"order": "up"}, "order"),
    ("/api/v1/customers", {"at_risk": "maybe"}, "at_risk"), ("/api/v1/customers", {"limit": "0"}, "limit"),
    ("/api/v1/agents", {"limit": "x"}, "limit"), ("/api/v1/teams", {"cursor": "-2"}, "cursor"),
    ("/api/v1/customers/kari@example.no/responses", {"scale": "x"}, "scale")])
def test_a_bad_query_is_422_naming_the_field(client, auth, path, query, field):
    response = client.get(path, headers=auth, query_string=query)
    assert response.status_code == 422
    assert response.json["code"] == 422 and field in response.json["errors"]


# Keys: scopes, rate limits, the document ----------------------------------------------------------

def test_a_read_only_key_may_read_but_not_erase(world, client, store):
    world.solved_and_answered("T-1", "kari@example.no", 5)
    reader = {"Authorization": f"Bearer {store.create_key('reader', ('read',))}"}
    assert client.get("/api/v1/customers/kari@example.no", headers=reader).status_code == 200
    refused = client.delete("/api/v1/customers/kari@example.no", headers=reader)
    assert refused.status_code == 403 and refused.json["code"] == 403
    assert client.get("/api/v1/customers/kari@example.no", headers=reader).status_code == 200


def test_an_admin_key_erases_a_customer(world, client, store, auth):
    world.solved_and_answered("T-1", "kari@example.no", 5)
    erased = client.delete("/api/v1/customers/Kari@example.no", headers=auth)
    assert erased.status_code == 200 and erased.json["customer"] == "kari@example.no"
    assert erased.json["erased"]["responses"] == 1
    assert client.get("/api/v1/customers/kari@example.no", headers=auth).status_code == 404
    assert client.delete("/api/v1/customers/kari@example.no", headers=auth).status_code == 404


def test_a_key_over_its_rate_gets_429_with_retry_after_and_other_keys_go_on(env, store):
    limited = load_settings({**env, "TRACKER_API_RATE_LIMIT": "3"})
    client = create_app(limited, store, enqueue=lambda task: None).test_client()
    first = {"Authorization": f"Bearer {store.create_key('first')}"}
    other = {"Authorization": f"Bearer {store.create_key('other')}"}
    # Seven requests: even if a minute boundary falls among them, one window sees a fourth.
    answers = [client.get("/api/v1/agents", headers=first) for _ in range(7)]
    assert [a.status_code for a in answers[:3]] == [200, 200, 200]
    limited = next(a for a in answers if a.status_code != 200)
    assert limited.status_code == 429 and limited.json["code"] == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert client.get("/api/v1/agents", headers=other).status_code == 200


def test_a_rate_limit_of_zero_lets_every_request_through(env, store):
    unlimited = load_settings({**env, "TRACKER_API_RATE_LIMIT": "0"})
    client = create_app(unlimited, store, enqueue=lambda task: None).test_client()
    auth = {"Authorization": f"Bearer {store.create_key('busy')}"}
    assert {client.get("/api/v1/sources", headers=auth).status_code for _ in range(30)} == {200}


@pytest.mark.parametrize("path", ["/api/v1/agents", "/api/v1/teams/x", "/api/v1/summary", "/api/v1/customers",
                                  "/api/v1/export/responses.csv", "/api/v1/brands", "/api/v1/sources/x"])
def test_every_new_path_needs_a_key(client, path):
    response = client.get(path)
    assert response.status_code == 401 and response.json["status"] == "Unauthorized"


def test_the_openapi_document_is_open_and_describes_every_path(client):
    document = client.get("/api/openapi.json").json
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == {
        "/api/v1/customers", "/api/v1/customers/{email}", "/api/v1/customers/{email}/responses",
        "/api/v1/customers/{email}/timeline", "/api/v1/customers/{email}/export", "/api/v1/agents",
        "/api/v1/agents/{id}", "/api/v1/teams",
        "/api/v1/teams/{id}", "/api/v1/sources", "/api/v1/sources/{id}", "/api/v1/brands", "/api/v1/brands/{id}",
        "/api/v1/channels", "/api/v1/channels/{id}", "/api/v1/tags", "/api/v1/tags/{id}", "/api/v1/organisations",
        "/api/v1/organisations/{id}",
        "/api/v1/summary", "/api/v1/export/responses.csv", "/api/v1/deliveries", "/api/v1/cases",
        "/api/v1/cases/{id}"}
    assert document["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    described = document["paths"]["/api/v1/summary"]["get"]
    assert {p["name"] for p in described["parameters"]} == {"from", "to", "source", "brand", "team", "agent", "scale",
                                                            "channel", "tag", "organisation", "resolved_by"}
    assert {"401", "403", "422", "429", "503"} <= set(described["responses"])
    assert described["responses"]["429"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"}
    assert "delete" in document["paths"]["/api/v1/customers/{email}"]


# Every aggregate equals a rebuild, whatever the history -------------------------------------------

EMAILS = ("kari@example.no", "per@example.no", "liv@example.no")
AGENTS = (None, {"id": "a-1", "name": "Ola"}, {"id": "a-2", "name": "Siv"})
ZENDESK_STATUS = {"ticket.solved": "Solved", "ticket.closed": "Closed", "ticket.reopened": "Open",
                  "ticket.updated": "Pending"}
INT_FIELDS = ("n", "value6", "satisfied", "promoter", "detractor", "nps", "sent")

step = st.fixed_dictionaries({
    "kind": st.sampled_from(sorted(ZENDESK_STATUS)), "agent": st.sampled_from(AGENTS),
    "team": st.sampled_from(("", "billing", "tech")), "brand": st.sampled_from(("", "acme", "zeta")),
    "second": st.integers(0, 590)})
ticket_steps = st.fixed_dictionaries({"ticket": st.integers(0, 4), "steps": st.lists(step, min_size=1, max_size=3)})
answer_plan = st.fixed_dictionaries({
    "rating": st.floats(0, 1), "days_ago": st.integers(0, 75), "comment": st.sampled_from(("", "fine", "=1+1")),
    "rerate": st.none() | st.tuples(st.floats(0, 1), st.integers(0, 75), st.sampled_from(("", "changed")))})
rounds = st.lists(st.fixed_dictionaries({
    "tickets": st.lists(ticket_steps, min_size=1, max_size=4), "scale": st.sampled_from(sorted(SCALES)),
    "answers": st.lists(answer_plan, min_size=2, max_size=6), "duplicates": st.lists(st.integers(0, 40), max_size=4),
    "shuffle": st.randoms(use_true_random=False)}), min_size=1, max_size=3)


def _delivery(ticket: int, step: dict[str, Any], at: str, n: int) -> tuple[str, dict[str, Any], dict[str, str]]:
    """Build one delivery of a history step: standard for even tickets, Zendesk's trigger body for odd ones."""
    email = EMAILS[ticket % len(EMAILS)]
    if ticket % 2:
        agent = step["agent"]
        body = zendesk_body(str(900 + ticket), email, ZENDESK_STATUS[step["kind"]], at,
                            (agent["id"], agent["name"]) if agent else None, step["team"], step["brand"])
        return "zendesk", body, {"x-zendesk-webhook-invocation-id": f"inv-{n}"}
    body = solved_event(ticket=f"T-{ticket}", email_address=email, at=at, kind=step["kind"], event_id=f"e-{n}",
                        agent=step["agent"], team=step["team"], brand=step["brand"])
    return "standard", body, {}


def score_fields(card: ScoreCard) -> dict[str, Any]:
    return {name: getattr(card, name) for name in ("score", "average", "csat", "responses", "surveys_sent",
                                                   "response_rate", "trend", "nps")}


def _same_fields(found: ScoreCard, expected: ScoreCard) -> None:
    """Compare score fields: all exact but the decayed score, whose float sums may differ in the last place."""
    for name in ("average", "csat", "responses", "surveys_sent", "response_rate", "trend", "nps"):
        assert getattr(found, name) == getattr(expected, name), name
    assert (found.score is None) == (expected.score is None)
    assert found.score is None or expected.score is None or abs(found.score - expected.score) <= 0.011


def _snapshot(store: Any) -> dict[tuple[str, str], Aggregate]:
    """Read every aggregate with its daily buckets, empty days dropped (a moved answer may leave them live)."""
    found = {}
    for kind in keys.AGGREGATE_KINDS:
        for ident in set(store.ids(kind)) | ({"all"} if kind == "overall" else set()):
            agg = store.aggregate(kind, ident)
            if any(getattr(agg, f) for f in COUNTS):
                found[(kind, ident)] = agg
    return found


@hypothesis_settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(history=rounds)
def test_any_history_of_events_and_answers_scores_exactly_what_a_rebuild_scores(history, post_event, store,
                                                                                   settings, env, smtp):
    fresh_database(store)
    smtp.messages.clear()
    now = int(time.time() * 1000)
    n = 0
    for number, plan in enumerate(history):
        deliveries = []
        for entry in plan["tickets"]:
            for step in entry["steps"]:
                n += 1
                at = time.strftime(ISO, time.gmtime(now / 1000 - 3600 + number * 600 + step["second"]))
                deliveries.append(_delivery(entry["ticket"], step, at, n))
        deliveries += [deliveries[i % len(deliveries)] for i in plan["duplicates"]]
        plan["shuffle"].shuffle(deliveries)
        for source, body, headers in deliveries:
            assert post_event(source, body, headers=headers).status_code in (200, 202)
        drain(store, settings)
        send_all(store, load_settings({**env, "TRACKER_SURVEY_THROTTLE_DAYS": "0",
                                       "TRACKER_SURVEY_SCALE": plan["scale"]}))
        surveys = sorted((s for email in EMAILS for s in store.customer_surveys(email)
                          if s.status in ("sent", "answered")), key=lambda s: s.sid)
        for survey, answer in zip(surveys, plan["answers"], strict=False):
            scale = SCALES[survey.scale]
            for fraction, days_ago, comment in [(answer["rating"], answer["days_ago"], answer["comment"]),
                                                *([answer["rerate"]] if answer["rerate"] else [])]:
                rating = scale.low + round(fraction * (scale.high - scale.low))
                record_answer(store, settings, store.survey(survey.sid), rating, comment,
                              now - days_ago * DAY_MS - 1000 * number)
    live = _snapshot(store)
    event(f"responses={len(indexed(store, 'resp'))} sent={len(indexed(store, 'sent'))}")
    lists = {kind: aggregate_list(store, kind, now) for kind in KINDS}
    ranks = dict(store.redis.zrange(keys.RANK_SCORE, 0, -1, withscores=True))
    overall = summary(store, settings, now, date_from=None, date_to=None, filters=Facets())
    _same_fields(overall.card, score_card("all", store.aggregate("overall", "all"), now))
    for row in lists["source"]:
        _same_fields(overall.by_source[row.id], row)
    rebuild_scores(store, settings)
    rebuilt = _snapshot(store)
    assert dict(store.redis.zrange(keys.RANK_SCORE, 0, -1, withscores=True)) == pytest.approx(ranks)
    assert set(live) == set(rebuilt)
    for ident, counts in live.items():
        again = rebuilt[ident]
        assert {f: getattr(counts, f) for f in INT_FIELDS} == {f: getattr(again, f) for f in INT_FIELDS}, ident
        assert counts.weight == pytest.approx(again.weight, rel=1e-9), ident
        assert counts.weighted == pytest.approx(again.weighted, rel=1e-9, abs=1e-9), ident
        assert counts.days == again.days, ident
    for kind, rows in lists.items():
        after = aggregate_list(store, kind, now)
        assert [(r.id, r.name) for r in rows] == [(r.id, r.name) for r in after]
        for row, other in zip(rows, after, strict=True):
            _same_fields(row, other)


def test_the_timeline_pages_with_a_cursor_in_both_orders_through_entries_that_share_a_millisecond(world, client,
                                                                                                  auth):
    for n in range(5):  # five orders in the same second: ties on the timeline
        world.order(f"O-{n}", "kari@example.no", "100.00")
    world.solved_and_answered("T-1", "kari@example.no", 4, "Fine")
    path = "/api/v1/customers/kari@example.no/timeline"
    oldest_first = get(client, auth, path, limit=1000)
    assert oldest_first["next_cursor"] is None and len(oldest_first["events"]) == 8
    newest_first = get(client, auth, path, limit=1000, order="desc")["events"]
    assert newest_first == oldest_first["events"][::-1]
    assert newest_first[0]["kind"] == "answer" and newest_first[0]["comment"] == "Fine"
    for limit in (1, 2, 3, 7):
        assert walk(client, auth, path, "events", limit=limit) == oldest_first["events"], limit
        assert walk(client, auth, path, "events", limit=limit, order="desc") == newest_first, limit


def test_a_timeline_cursor_that_is_not_from_this_order_is_422(world, client, auth):
    for n in range(3):
        world.order(f"O-{n}", "kari@example.no", "100.00")
    drain(world.store, world.settings)
    path = "/api/v1/customers/kari@example.no/timeline"
    cursor = get(client, auth, path, limit=1, order="desc")["next_cursor"]
    for query in ({"cursor": cursor}, {"cursor": "x"}, {"cursor": "ZDEuMS4x", "order": "desc"}):
        response = client.get(path, headers=auth, query_string={"limit": 1, **query})
        assert response.status_code == 422 and "cursor" in response.json["errors"], (query, response.json)


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("PUT", "/api/v1/summary", "GET, HEAD"), ("POST", "/api/v1/agents", "GET, HEAD"),
    ("DELETE", "/api/v1/export/responses.csv", "GET, HEAD"), ("PATCH", "/api/v1/customers", "GET, HEAD"),
    ("PUT", "/api/v1/customers/kari@example.no", "GET, HEAD, DELETE"),
])
def test_a_method_an_endpoint_does_not_take_is_405_naming_the_ones_it_does(client, auth, method, path, allowed):
    response = client.open(path, method=method, headers=auth)
    assert response.status_code == 405 and response.headers["Allow"] == allowed, response.json
    assert response.json["message"] == f"{method} is not allowed here; this endpoint takes {allowed}."
    assert client.open("/api/v1/no-such-thing", method=method, headers=auth).status_code == 404
    assert client.open(path, method=method).status_code == 401  # nothing is told before the key
