"""Aggregates per channel, tag and organisation, split by who resolved the ticket (SPEC §12): live equals a rebuild
through re-ratings, erasure and retention; the API lists, details, filters and exports them."""

from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support import World, drain, iso, solved_event
from tests.test_outbox import _answered_long_ago, assert_equals_a_rebuild, assert_same, state
from tracker.answers.record import record_answer
from tracker.config import load_settings
from tracker.model import Survey
from tracker.organisations import is_free_mail, organisation_of
from tracker.privacy.erase import erase_customer
from tracker.privacy.retention import retire_old_records
from tracker.scores import dimensions
from tracker.scores import summary as summary_module
from tracker.scores.dimensions import filtered_detail, filtered_page
from tracker.scores.maths import score_card
from tracker.scores.rebuild import rebuild_scores
from tracker.scores.summary import Facets, day_of_ms, iter_responses, summary
from tracker.store import keys
from tracker.store.survey_codes import expanded
from tracker.store.surveys import MAX_TAGS
from tracker.web.dashboard.trends import _weekly, trends, weeks_of

# Every test twice: on a standalone Redis and on a 3-master Redis Cluster (every script and command one slot).
pytestmark = pytest.mark.parametrize("store_kind", ["standalone", pytest.param("cluster", marks=pytest.mark.cluster)],
                                     indirect=True)


@pytest.fixture
def world(post_event: Any, store: Any, env: dict[str, str], smtp: Any, client: Any) -> World:
    return World(post_event, store, env, smtp, client)


@pytest.fixture
def auth(store: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {store.create_key('lead')}"}


def now_ms() -> int:
    return int(time.time() * 1000)


def solved(world: World, ticket: str, email: str, organisation: str | None = None, **fields: Any) -> None:
    """Post a solved ticket of a customer (with the source's organisation when given)."""
    body = solved_event(ticket=ticket, email_address=email, at=iso(60), **fields)
    body["customer"] = {"id": f"c-{email.split('@')[0]}", "email": email, "name": email.split("@")[0].title(),
                        **({"organisation": organisation} if organisation else {})}
    world.event(body)


def answered(world: World, ticket: str, email: str, rating: int, organisation: str | None = None,
             **fields: Any) -> str:
    solved(world, ticket, email, organisation, **fields)
    assert world.send() == ["sent"]
    world.smtp.wait_for(len(world.smtp.messages))
    return world.answer(email, rating)


def get(client: Any, auth: dict[str, str], path: str, **query: Any) -> Any:
    response = client.get(path, headers=auth, query_string=query)
    assert response.status_code == 200, (path, response.status_code, response.get_data(as_text=True)[:500])
    return response.json


@pytest.fixture
def history(world: World) -> World:
    """Four customers across two channels, tags, organisations and both resolvers."""
    answered(world, "T-1", "kari@acme.no", 5, "Acme AS", channel="chat", tags=["vip", "refund"],
             resolved_by="human")
    answered(world, "T-2", "ola@gmail.com", 1, channel="email", tags=["refund"], resolved_by="bot",
             agent={"id": "a-8", "name": "Bot"})
    answered(world, "T-3", "per@nordic.example", 4, channel="email", tags=[], team="tech")
    answered(world, "T-4", "liv@acme.no", 2, channel="chat", tags=["vip"], resolved_by="human")
    return world


# Organisation ---------------------------------------------------------------------------------------------------

def test_the_organisation_is_the_sources_else_a_company_domain_and_none_for_free_mail(store_kind):
    assert organisation_of("Acme AS", "kari@gmail.com") == "Acme AS"
    assert organisation_of(None, "Kari@Acme.NO") == "acme.no"
    assert organisation_of("  ", "kari@nordic.example") == "nordic.example"
    for free in ("kari@gmail.com", "kari@hotmail.no", "kari@yahoo.co.uk", "kari@online.no", "kari@telia.com",
                 "kari@gmx.de", "kari@proton.me"):
        assert organisation_of(None, free) is None, free
    assert organisation_of(None, "not-an-address") is None
    assert not is_free_mail("gmail.com.evil.example")


def test_surveys_carry_the_organisation_tags_and_resolver_of_their_ticket_and_customer(history, store):
    by_email = {email: store.customer_surveys(email)[0] for email in
                ("kari@acme.no", "ola@gmail.com", "per@nordic.example", "liv@acme.no")}
    assert (by_email["kari@acme.no"].organisation, by_email["kari@acme.no"].tags,
            by_email["kari@acme.no"].resolved_by) == ("Acme AS", ("vip", "refund"), "human")
    assert by_email["ola@gmail.com"].organisation is None and by_email["ola@gmail.com"].resolved_by == "bot"
    assert by_email["per@nordic.example"].organisation == "nordic.example"
    assert by_email["per@nordic.example"].resolved_by is None and by_email["per@nordic.example"].tags == ()
    # Nothing is written for what a survey does not have (bytes per customer).
    raw = expanded(store.redis.hgetall(keys.survey(by_email["per@nordic.example"].sid)))
    assert not {"tags", "resolved_by"} & set(raw) and raw["organisation"] == "nordic.example"


def test_a_ticket_no_agent_worked_on_counts_as_resolved_by_a_bot_and_tags_are_capped(world, store, settings):
    tags = [f"t{n}" for n in range(MAX_TAGS + 5)] + ["t0", " "]
    solved(world, "T-NA", "kari@acme.no", channel="email", tags=tags, agent_involved=False)
    drain(store, settings)
    survey = store.create_survey(Survey(sid="abcdefghijklmnopqrst", tkey="standard:T-NA", kind="ticket",
                                        scale="csat5", customer="kari@acme.no", source="standard",
                                        status="sending", channel="email"))
    assert survey.resolved_by == "bot" and survey.organisation == "acme.no"
    assert survey.tags == tuple(f"t{n}" for n in range(MAX_TAGS))


def test_an_answer_reported_by_a_survey_answered_event_counts_for_its_tickets_dimensions(world, store, settings):
    solved(world, "T-9", "kari@acme.no", "Acme AS", channel="chat", tags=["vip"], resolved_by="bot")
    drain(store, settings)
    world.event({"type": "survey.answered", "id": "evt-answer-9", "occurred_at": iso(30), "ticket": {"id": "T-9"},
                 "customer": {"email": "kari@acme.no"}, "answer": {"rating": 4, "scale": "csat5"}})
    drain(store, settings)
    for kind, ident in (("organisation", "Acme AS"), ("organisation@bot", "Acme AS"), ("tag@bot", "vip"),
                        ("channel", "chat")):
        assert store.aggregate(kind, ident).n == 1, (kind, ident)
    assert store.aggregate("tag@human", "vip").n == 0


# Live aggregates equal a rebuild ----------------------------------------------------------------------------------

def test_every_dimension_and_its_resolver_split_equals_a_rebuild_through_re_ratings_erasure_and_retention(
        history, store, env):
    settings = load_settings({**env, "TRACKER_RETENTION_DAYS": "30"})
    _answered_long_ago(history, "T-OLD", "old@acme.no", 1, 40)  # its ticket has channel email, tag vip
    history.answer("kari@acme.no", 2, "Changed my mind")  # a re-rating
    history.answer("ola@gmail.com", 4)
    erase_customer(store, settings, "liv@acme.no")
    removed = retire_old_records(store, settings, now_ms())
    assert (removed.surveys, removed.answers) == (1, 1)
    assert not store.outbox_waiting()
    assert_equals_a_rebuild(store, settings)

    acme = store.aggregate("organisation", "Acme AS")
    assert (acme.n, acme.value6) == (1, 150)  # kari's 2 on csat5 (25, six times)
    assert store.aggregate("organisation", "acme.no").n == 1  # old@acme.no's retired answer still counts
    assert store.ids("organisation") == ["Acme AS", "acme.no", "nordic.example"]
    assert store.aggregate("tag", "refund").n == 2 and store.aggregate("tag", "vip").n == 2
    assert store.aggregate("channel", "chat").n == 1  # liv's chat answer was erased
    assert store.aggregate("channel@human", "chat").n == 1 and store.aggregate("channel@bot", "chat").n == 0
    assert store.aggregate("overall@bot", "all").n == 1 and store.aggregate("overall@human", "all").n == 1
    assert store.aggregate("agent@bot", "standard:a-8").value6 == 450  # ola's 4 on csat5 (75, six times)
    live = state(store)
    assert "liv@acme.no" not in repr(live)
    rebuild_scores(store, settings)
    assert_same(live, state(store))


# Filtered lists and summaries from the rollups equal the answers' arithmetic -----------------------------------

DIMENSIONS = ("source", "agent", "team", "brand", "channel", "tag", "organisation")


def _by_answers(store: Any, kind: str, filters: Facets) -> list[Any]:
    """The cards a filtered list shows, summed from every answer and sent survey (what two filters read)."""
    rows = sorted(dimensions._from_answers(store, kind, filters).items(), key=lambda row: (-row[1].n, row[0]))
    names = store.agent_names([ident for ident, _ in rows]) if kind == "agent" else {}
    return [score_card(ident, sums, now_ms(), names.get(ident) if kind == "agent" else ident) for ident, sums in rows]


def _single_filters(store: Any) -> list[Facets]:
    """Every one-dimension filter over the values the store holds, and one no survey has, each alone and split."""
    chosen = [Facets(**{name: value}) for name in DIMENSIONS for value in [*store.ids(name), "nobody-has-this"]]
    return [*chosen, *(replace(f, resolved_by=by) for f in chosen for by in keys.RESOLVERS)]


def test_a_list_detail_or_summary_filtered_by_one_other_dimension_reads_the_rollups_and_equals_the_answers(
        history, store, settings):
    history.answer("kari@acme.no", 2, "Changed my mind")  # a re-rating moves the crossed sums too
    answered(history, "T-5", "siv@nordic.example", 3, channel="phone", tags=["vip", "billing"], brand="nord",
             resolved_by="bot", agent={"id": "a-9", "name": "Siv"})
    erase_customer(store, settings, "liv@acme.no")  # an erasure takes them off
    assert not store.outbox_waiting()
    compared = 0
    for filters in _single_filters(store):
        for kind in DIMENSIONS:
            if getattr(filters, kind):
                continue  # a list's own dimension is its one entity
            assert dimensions.crossing_of(kind, filters)[0], (kind, filters)  # the rollups answer it
            cards, total = filtered_page(store, kind, now_ms(), 0, 100, filters)
            assert cards == _by_answers(store, kind, filters) and total == len(cards), (kind, filters)
            for card in cards:
                assert filtered_detail(store, kind, card.id, now_ms(), filters) == card
            compared += len(cards)
        rolled = summary(store, settings, now_ms(), date_from=None, date_to=None, filters=filters)
        counted = summary_module._from_answers(store, filters, *summary_module.resolve_range(store, now_ms(), None,
                                                                                             None))
        assert summary_module.rolled_entity(filters) is not None
        assert rolled.card == score_card("all", counted.total, now_ms()), filters
        assert {k: (c.responses, c.surveys_sent, c.average) for k, c in rolled.by_source.items()} == {
            k: (a.n, a.sent, round(a.value6 / 6 / a.n, 2) if a.n else None) for k, a in counted.per_source.items()}
        assert [day.responses for day in rolled.series if day.responses] == [
            n for _, (n, _v) in sorted(counted.total.days.items()) if n]
    assert compared > 100  # the history crosses enough values for the comparison to mean something


def test_the_dashboard_s_weekly_csat_under_one_other_filter_reads_the_crossed_days_and_equals_the_answers(
        history, store, settings):
    history.answer("kari@acme.no", 2)  # a re-rating moves its crossed days
    today = datetime.now(UTC).date()
    first = today - timedelta(days=30)
    for filters in _single_filters(store):
        rows = {kind: store.ids(kind) for kind in ("agent", "team") if not getattr(filters, kind)}
        got = trends(store, first, today, filters, rows)
        for kind, idents in rows.items():
            expected: dict[str, dict[str, tuple[int, int]]] = {ident: {} for ident in idents}
            seen: set[str] = set()
            for answer in iter_responses(store, date_from=first, date_to=today, filters=filters):
                ident = answer.agent if kind == "agent" else getattr(answer, kind)
                if ident in expected:
                    seen.add(ident)
                    day = day_of_ms(answer.at_ms).isoformat()
                    n, satisfied = expected[ident].get(day, (0, 0))
                    expected[ident][day] = (n + 1, satisfied + int(answer.satisfied))
            spans = weeks_of(first, today)
            for ident in idents:
                weeks = [(w.responses, w.satisfied) for w in got[kind][ident].weeks]
                wanted = [(w.responses, w.satisfied) for w in _weekly(expected[ident], spans).weeks]
                assert weeks == wanted and any(n for n, _ in wanted) == (ident in seen), (kind, ident, filters)


def test_two_filters_of_other_dimensions_read_the_answers_and_still_agree(history, store):
    filters = Facets(channel="email", tag="refund")
    assert not dimensions.crossing_of("agent", filters)[0]
    cards, total = filtered_page(store, "agent", now_ms(), 0, 10, filters)
    assert [(c.id, c.responses) for c in cards] == [("standard:a-8", 1)] and total == 1


def test_an_agent_s_source_is_its_id_s_prefix_never_a_crossing(history, store, settings):
    """Agents filtered by source keep those whose id it prefixes, with their plain sums (an agent is of one
    source: no rollup crosses it by source); an agent filter implies its source, and contradicts another."""
    assert not any("|source=" in field for field in store.rollup_fields("agent", "standard:a-7"))
    for kind, filters in (("agent", Facets(source="standard", channel="email")),
                          ("team", Facets(source="standard", agent="standard:a-7")),
                          ("agent", Facets(source="standard", resolved_by="human"))):
        assert dimensions.crossing_of(kind, filters)[0], (kind, filters)
        cards, total = filtered_page(store, kind, now_ms(), 0, 10, filters)
        assert cards == _by_answers(store, kind, filters) and cards and total == len(cards), (kind, filters)
    for kind in ("agent", "team", "channel"):
        assert filtered_page(store, kind, now_ms(), 0, 10, Facets(source="zendesk", agent="standard:a-7")) == ([], 0)
    assert filtered_detail(store, "agent", "standard:a-7", now_ms(), Facets(source="zendesk")) is None
    narrowed = summary(store, settings, now_ms(), date_from=None, date_to=None,
                       filters=Facets(source="standard", agent="standard:a-7"))
    assert narrowed.card == summary(store, settings, now_ms(), date_from=None, date_to=None,
                                    filters=Facets(agent="standard:a-7")).card and narrowed.card.responses


# The API ------------------------------------------------------------------------------------------------------

def test_channels_tags_and_organisations_are_listed_and_detailed_like_agents(history, client, auth):
    channels = get(client, auth, "/api/v1/channels")
    assert [(c["id"], c["responses"]) for c in channels["channels"]] == [("chat", 2), ("email", 2)]
    assert channels["next_cursor"] is None
    assert set(channels["channels"][0]) == {"id", "name", "score", "average", "csat", "responses", "surveys_sent",
                                            "response_rate", "trend", "nps"}
    tags = get(client, auth, "/api/v1/tags", limit=1)
    assert [t["id"] for t in tags["tags"]] == ["refund"] and tags["next_cursor"] == "1"
    assert [t["id"] for t in get(client, auth, "/api/v1/tags", cursor="1")["tags"]] == ["vip"]
    organisations = {o["id"]: o for o in get(client, auth, "/api/v1/organisations")["organisations"]}
    assert set(organisations) == {"Acme AS", "acme.no", "nordic.example"}  # gmail.com names no organisation
    assert get(client, auth, "/api/v1/organisations/Acme AS") == organisations["Acme AS"]
    assert get(client, auth, "/api/v1/tags/vip")["csat"] == 50.0
    missing = client.get("/api/v1/tags/nope", headers=auth)
    assert missing.status_code == 404 and missing.json["code"] == 404 and missing.json["message"]


def test_every_list_detail_and_the_summary_split_by_resolved_by(history, client, auth):
    bots = get(client, auth, "/api/v1/agents", resolved_by="bot")["agents"]
    assert [(a["id"], a["responses"], a["name"]) for a in bots] == [("standard:a-8", 1, "Bot")]
    humans = get(client, auth, "/api/v1/agents", resolved_by="human")["agents"]
    assert [(a["id"], a["responses"]) for a in humans] == [("standard:a-7", 2)]
    assert get(client, auth, "/api/v1/channels/email", resolved_by="bot")["responses"] == 1
    assert client.get("/api/v1/channels/chat", headers=auth, query_string={"resolved_by": "bot"}).status_code == 404
    assert [t["id"] for t in get(client, auth, "/api/v1/tags", resolved_by="bot")["tags"]] == ["refund"]
    summary = get(client, auth, "/api/v1/summary", resolved_by="human")
    assert summary["responses"] == 2 and summary["average"] == 62.5 and summary["filters"] == {"resolved_by": "human"}
    assert set(summary["by_source"]) == {"standard"} and summary["by_source"]["standard"]["responses"] == 2
    unsplit = get(client, auth, "/api/v1/summary")
    assert unsplit["responses"] == 4  # per's ticket said nothing of its resolver: only the unsplit numbers count it


def test_channel_tag_and_organisation_filter_every_list_the_summary_and_unknown_values_give_nothing(
        history, client, auth):
    agents = get(client, auth, "/api/v1/agents", channel="email")["agents"]
    assert sorted((a["id"], a["responses"], a["surveys_sent"]) for a in agents) == [
        ("standard:a-7", 1, 1), ("standard:a-8", 1, 1)]
    assert [t["id"] for t in get(client, auth, "/api/v1/teams", tag="vip")["teams"]] == ["billing"]
    assert get(client, auth, "/api/v1/teams/tech", channel="email")["responses"] == 1
    assert client.get("/api/v1/teams/tech", headers=auth, query_string={"channel": "chat"}).status_code == 404
    by_org = get(client, auth, "/api/v1/channels", organisation="acme.no")["channels"]
    assert [(c["id"], c["responses"], c["average"]) for c in by_org] == [("chat", 1, 25.0)]
    assert [c["id"] for c in get(client, auth, "/api/v1/channels", channel="chat")["channels"]] == ["chat"]
    assert get(client, auth, "/api/v1/sources", tag="vip", resolved_by="human")["sources"][0]["responses"] == 2
    tagged = get(client, auth, "/api/v1/summary", tag="refund")
    assert tagged["responses"] == 2 and tagged["surveys_sent"] == 2 and tagged["filters"] == {"tag": "refund"}
    assert get(client, auth, "/api/v1/summary", organisation="Acme AS")["average"] == 100.0
    assert get(client, auth, "/api/v1/summary", channel="chat", resolved_by="human")["responses"] == 2
    responses = get(client, auth, "/api/v1/customers/kari@acme.no/responses", tag="vip")["responses"]
    assert [r["tags"] for r in responses] == [["vip", "refund"]] and responses[0]["organisation"] == "Acme AS"
    for path, key in (("/api/v1/agents", "agents"), ("/api/v1/tags", "tags"), ("/api/v1/organisations",
                                                                                 "organisations")):
        for query in ({"channel": "fax"}, {"tag": "nope"}, {"organisation": "nobody.example"}):
            assert get(client, auth, path, **query) == {key: [], "next_cursor": None}, (path, query)
    assert get(client, auth, "/api/v1/summary", tag="nope")["responses"] == 0


@pytest.mark.parametrize("path", ["/api/v1/agents", "/api/v1/tags/vip", "/api/v1/summary",
                                  "/api/v1/export/responses.csv", "/api/v1/customers/kari@acme.no/responses"])
@pytest.mark.parametrize("query, field", [({"resolved_by": "robot"}, "resolved_by"), ({"tag": ""}, "tag"),
                                          ({"organisation": "x" * 201}, "organisation"), ({"channel": ""}, "channel")])
def test_a_malformed_filter_is_a_422_with_the_envelope(client, auth, path, query, field):
    response = client.get(path, headers=auth, query_string=query)
    assert response.status_code == 422, response.get_data(as_text=True)[:300]
    assert response.json["code"] == 422 and field in response.json["errors"]


def test_the_csv_has_the_dimensions_the_reason_how_it_was_answered_and_extra_answers(world, store, settings,
                                                                                    client, auth):
    answered(world, "T-1", "kari@acme.no", 2, "=HYPERLINK(\"x\")", channel="chat", tags=["-vip", "refund"],
             resolved_by="human")
    survey = store.customer_surveys("kari@acme.no")[0]
    record_answer(store, settings, survey, 2, "Slow", now_ms(), reason="slow",
                  extra={"first_contact": "no", "why": "@once"})
    answered(world, "T-2", "per@gmail.com", 5, channel="email", tags=[])
    response = client.get("/api/v1/export/responses.csv", headers=auth)
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert {"channel", "tags", "organisation", "resolved_by", "reason", "answered_via", "extra"} <= set(rows[0])
    kari, per = rows
    assert kari["channel"] == "chat" and kari["tags"] == "'-vip refund" and kari["resolved_by"] == "human"
    assert kari["organisation"] == "'=HYPERLINK(\"x\")"  # neutralised: no spreadsheet runs it
    assert kari["reason"] == "slow" and json.loads(kari["extra"]) == {"first_contact": "no", "why": "@once"}
    assert (per["organisation"], per["tags"], per["resolved_by"], per["extra"], per["reason"]) == ("", "", "", "", "")
    filtered = client.get("/api/v1/export/responses.csv", headers=auth, query_string={"organisation": "gmail.com"})
    assert filtered.get_data(as_text=True).count("\r\n") == 1  # the header row only: gmail.com is no organisation
    by_tag = client.get("/api/v1/export/responses.csv", headers=auth, query_string={"tag": "refund"})
    assert [row["customer"] for row in csv.DictReader(io.StringIO(by_tag.get_data(as_text=True)))] == [
        "kari@acme.no"]


def test_the_openapi_document_names_the_new_paths_and_filters(client):
    document = client.get("/api/openapi.json").json
    for path in ("/api/v1/channels", "/api/v1/tags/{id}", "/api/v1/organisations"):
        assert path in document["paths"]
    names = {p["name"] for p in document["paths"]["/api/v1/agents"]["get"]["parameters"]}
    assert {"channel", "tag", "organisation", "resolved_by", "limit", "cursor"} <= names
    summary = {p["name"] for p in document["paths"]["/api/v1/summary"]["get"]["parameters"]}
    assert {"channel", "tag", "organisation", "resolved_by"} <= summary
