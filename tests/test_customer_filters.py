"""The customers list, the customer's card and the summary's case numbers under the filters (SPEC §12: `channel`,
`tag`, `organisation` on every list and the summary; every aggregate split by `?resolved_by=`)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.support import World
from tests.test_cases import answer_data, deliver
from tests.test_dimensions import answered, get
from tracker.cases.work import update_case
from tracker.store import keys

# Every test twice: on a standalone Redis and on a 3-master Redis Cluster (every script and command one slot).
pytestmark = pytest.mark.parametrize("store_kind", ["standalone", pytest.param("cluster", marks=pytest.mark.cluster)],
                                     indirect=True)


@pytest.fixture
def world(post_event: Any, store: Any, env: dict[str, str], smtp: Any, client: Any) -> World:
    return World(post_event, store, env, smtp, client)


@pytest.fixture
def auth(store: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {store.create_key('lead')}"}


@pytest.fixture
def history(world: World) -> World:
    """Four customers across two channels, tags, organisations and both resolvers; kari has a second answer, by email
    and resolved by a bot."""
    answered(world, "T-1", "kari@acme.no", 5, "Acme AS", channel="chat", tags=["vip", "refund"],
             resolved_by="human")
    answered(world, "T-2", "ola@gmail.com", 1, channel="email", tags=["refund"], resolved_by="bot",
             agent={"id": "a-8", "name": "Bot"})
    answered(world, "T-3", "per@nordic.example", 4, channel="email", tags=[], team="tech")
    answered(world, "T-4", "liv@acme.no", 2, channel="chat", tags=["vip"], resolved_by="human")
    answered(world, "T-5", "kari@acme.no", 1, "Acme AS", channel="email", tags=[], resolved_by="bot")
    return world


def listed(client: Any, auth: dict[str, str], **query: Any) -> list[str]:
    return [card["customer"] for card in get(client, auth, "/api/v1/customers", limit=500, **query)["customers"]]


def now_ms() -> int:
    return int(time.time() * 1000)


# The customers list ---------------------------------------------------------------------------------------------

def test_the_customers_list_keeps_only_customers_with_answers_passing_every_filter(history, client, auth):
    assert sorted(listed(client, auth)) == ["kari@acme.no", "liv@acme.no", "ola@gmail.com", "per@nordic.example"]
    assert sorted(listed(client, auth, channel="chat")) == ["kari@acme.no", "liv@acme.no"]
    assert sorted(listed(client, auth, tag="refund")) == ["kari@acme.no", "ola@gmail.com"]
    assert listed(client, auth, organisation="Acme AS") == ["kari@acme.no"]
    assert sorted(listed(client, auth, resolved_by="bot")) == ["kari@acme.no", "ola@gmail.com"]
    assert sorted(listed(client, auth, resolved_by="human")) == ["kari@acme.no", "liv@acme.no"]
    assert listed(client, auth, team="tech") == ["per@nordic.example"]
    assert listed(client, auth, agent="standard:a-8") == ["ola@gmail.com"]
    assert listed(client, auth, source="standard", channel="email", resolved_by="bot") == ["kari@acme.no",
                                                                                          "ola@gmail.com"]
    assert listed(client, auth, channel="chat", resolved_by="bot") == []
    assert listed(client, auth, source="zendesk") == []
    assert listed(client, auth, channel="sms") == []


def test_a_listed_customers_card_counts_the_passing_answers_alone_but_orders_and_at_risk_whole(history, client, auth):
    history.order("O-1", "kari@acme.no", "250.00")
    history.send()  # drains the order
    whole = get(client, auth, "/api/v1/customers/kari@acme.no")
    assert whole["responses"] == 2 and whole["surveys_sent"] == 2
    (chat,) = [c for c in get(client, auth, "/api/v1/customers", channel="chat")["customers"]
               if c["customer"] == "kari@acme.no"]
    assert (chat["responses"], chat["surveys_sent"], chat["score"], chat["csat"]) == (1, 1, 100.0, 100.0)
    assert chat["last_response"]["ticket"] == "standard:T-1" and chat["last_response"]["rating"] == 5
    assert chat["orders"] == whole["orders"] and chat["orders"]["total"] == "250.00"
    assert chat["at_risk"] == whole["at_risk"] and chat["name"] == "Kari"
    (bot,) = get(client, auth, "/api/v1/customers", resolved_by="bot", sort="responses", order="asc",
                 limit=1)["customers"]
    assert bot["customer"] in ("kari@acme.no", "ola@gmail.com") and bot["responses"] == 1 and bot["score"] == 0.0
    # The list's card is the card under the same filters.
    assert get(client, auth, "/api/v1/customers/kari@acme.no", channel="chat") == chat


def test_a_filtered_list_ranks_by_the_filtered_numbers_and_pages_every_customer_once(history, client, auth):
    by_score = listed(client, auth, tag="vip")  # kari's vip answer is a 5, liv's a 2: ascending by score
    assert by_score == ["liv@acme.no", "kari@acme.no"]
    assert listed(client, auth, tag="vip", order="desc") == ["kari@acme.no", "liv@acme.no"]
    seen, cursor = [], None
    while True:
        page = get(client, auth, "/api/v1/customers", resolved_by="human", limit=1,
                   **({"cursor": cursor} if cursor else {}))
        seen += [card["customer"] for card in page["customers"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == listed(client, auth, resolved_by="human") and len(seen) == 2
    first = get(client, auth, "/api/v1/customers", resolved_by="human", limit=1)["next_cursor"]
    for other in ({"resolved_by": "bot"}, {}, {"resolved_by": "human", "channel": "chat"}):
        response = client.get("/api/v1/customers", headers=auth, query_string={"limit": 1, "cursor": first, **other})
        assert response.status_code == 422 and "cursor" in response.json["errors"]
    unfiltered = get(client, auth, "/api/v1/customers", limit=1)["next_cursor"]
    response = client.get("/api/v1/customers", headers=auth,
                          query_string={"limit": 1, "cursor": unfiltered, "channel": "chat"})
    assert response.status_code == 422


def test_the_at_risk_filter_under_filters_is_the_whole_customers(history, client, auth):
    at_risk = {c["customer"] for c in get(client, auth, "/api/v1/customers", at_risk="true", limit=500)["customers"]}
    assert "ola@gmail.com" in at_risk and "per@nordic.example" not in at_risk
    assert set(listed(client, auth, at_risk="true", channel="chat")) == at_risk & {"kari@acme.no", "liv@acme.no"}
    assert set(listed(client, auth, at_risk="false", channel="chat")) == {"kari@acme.no", "liv@acme.no"} - at_risk


@pytest.mark.parametrize("query, field", [({"resolved_by": "robot"}, "resolved_by"),
                                          ({"channel": "c" * 2000}, "channel"), ({"tag": "t" * 300}, "tag"),
                                          ({"organisation": "o" * 400}, "organisation"), ({"team": ""}, "team"),
                                          ({"agent": "a" * 2000}, "agent")])
def test_the_list_and_the_card_refuse_a_malformed_filter_naming_it(history, client, auth, query, field):
    for path in ("/api/v1/customers", "/api/v1/customers/kari@acme.no"):
        response = client.get(path, headers=auth, query_string=query)
        assert response.status_code == 422, (path, response.json)
        assert list(response.json["errors"]) == [field]


# The customer's card -----------------------------------------------------------------------------------------

def test_the_card_under_resolved_by_counts_that_resolvers_answers_alone(history, client, auth):
    whole = get(client, auth, "/api/v1/customers/kari@acme.no")
    bot = get(client, auth, "/api/v1/customers/kari@acme.no", resolved_by="bot")
    human = get(client, auth, "/api/v1/customers/kari@acme.no", resolved_by="human")
    assert (whole["responses"], bot["responses"], human["responses"]) == (2, 1, 1)
    assert (bot["score"], human["score"]) == (0.0, 100.0) and bot["surveys_sent"] == 1
    assert bot["last_response"]["ticket"] == "standard:T-5" and human["last_response"]["ticket"] == "standard:T-1"
    assert bot["orders"] == whole["orders"] and bot["at_risk"] == whole["at_risk"]
    nobody = get(client, auth, "/api/v1/customers/per@nordic.example", resolved_by="bot")
    assert (nobody["responses"], nobody["surveys_sent"], nobody["score"], nobody["last_response"]) == (0, 0, None,
                                                                                                      None)
    assert client.get("/api/v1/customers/nobody@acme.no?resolved_by=bot", headers=auth).status_code == 404


def test_the_card_ignores_a_query_parameter_it_does_not_know_like_the_other_reads(history, client, auth):
    whole = get(client, auth, "/api/v1/customers/kari@acme.no")
    assert get(client, auth, "/api/v1/customers/kari@acme.no", colour="blue") == whole
    assert client.get("/api/v1/agents?colour=blue", headers=auth).status_code == 200


# The summary's case numbers -------------------------------------------------------------------------------------

def _open_case(world: World, email: str, rating: int) -> str:
    survey = world.store.customer_surveys(email)[0]
    deliver(world.store, world.settings, answer_data(survey.sid, email, rating, False, ticket=survey.tkey))
    return keys.case_id(survey.sid, email)


def test_the_summarys_case_numbers_follow_its_filters(history, client, auth, store, settings):
    ola = _open_case(history, "ola@gmail.com", 1)  # email, refund, bot
    liv = _open_case(history, "liv@acme.no", 2)  # chat, vip, human, acme.no
    kari = _open_case(history, "kari@acme.no", 1)  # email, bot, Acme AS (her newest survey: T-5)

    def cases(**query: Any) -> tuple[Any, Any, Any]:
        body = get(client, auth, "/api/v1/summary", **query)
        return body["cases_open"], body["cases_overdue"], body["recovered_rate"]

    assert cases() == (3, 0, None)
    assert cases(channel="chat") == (1, 0, None)
    assert cases(channel="email") == (2, 0, None)
    assert cases(tag="refund") == (1, 0, None)
    assert cases(resolved_by="bot") == (2, 0, None)
    assert cases(organisation="Acme AS") == (1, 0, None)
    assert cases(organisation="nordic.example") == (0, 0, None)
    update_case(store, settings, ola, now_ms(), "lead", status="recovered")
    update_case(store, settings, kari, now_ms(), "lead", status="not_recovered")
    assert cases() == (1, 0, 50.0)
    assert cases(resolved_by="bot") == (0, 0, 50.0)
    assert cases(tag="refund") == (0, 0, 100.0)
    assert cases(channel="chat") == (1, 0, None)
    assert cases(channel="email", resolved_by="bot", organisation="Acme AS") == (0, 0, 0.0)
    body = get(client, auth, "/api/v1/summary", organisation="Acme AS")
    assert body["first_contact_hours"] is None  # nobody contacted kari
    update_case(store, settings, liv, now_ms(), "lead", note="Called her")
    assert get(client, auth, "/api/v1/summary", channel="chat")["first_contact_hours"] is not None
    assert get(client, auth, "/api/v1/summary", channel="email")["first_contact_hours"] is None
