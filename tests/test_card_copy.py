"""The score card's copy of the newest answer (issue 9, hot paths): what the card shows of that answer is kept in
the customer's profile, so the card GET is read with the key check in one round trip. It follows every change of
the answer the profile names, rebuild-scores gives it as the live path does, and nothing of it (nor of the rest
of the card) reaches a request the key check turns away."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import World
from tracker.answers.record import record_answer
from tracker.config import load_settings
from tracker.events import iso_from_ms
from tracker.model import LastResponse, OrdersSummary, ScoreCard
from tracker.schema_cache import schema
from tracker.scores.cards import customer_card, public_ref
from tracker.scores.rebuild import rebuild_scores
from tracker.store import keys
from tracker.store.outbox import CARD_COPY
from tracker.web.api.customers import card_json
from tracker.web.api.schemas import ScoreCardSchema
from tracker.web.app import create_app

KARI = "kari@example.no"
CARD = f"/api/v1/customers/{KARI}"


@pytest.fixture(autouse=True)
def closed_after(store) -> Iterator[None]:
    yield
    store.redis.connection_pool.disconnect()


def copy_of(store, email: str) -> str | None:
    return store.redis.hget(keys.customer(email, "profile"), CARD_COPY)


def named_answer(store, email: str) -> dict[str, Any] | None:
    """Show the answer the profile names as newest the way the card does, read from the answer itself."""
    answer = store.response(store.profile(email).last_response_sid)
    if answer is None:
        return None
    return {"rating": answer.rating, "scale": answer.scale, "at": iso_from_ms(answer.at_ms),
            "ticket": public_ref(answer.tkey)}


def survey_of(store, email: str, sid: str):
    return next(s for s in store.customer_surveys(email) if s.sid == sid)


def card_get(client, auth, round_trips) -> tuple[dict[str, Any], int]:
    before = round_trips[0]
    response = client.get(CARD, headers=auth)
    assert response.status_code == 200, response.json
    return response.json, round_trips[0] - before


def two_answers(world: World) -> tuple[str, str]:
    """Kari answers a survey about T-1 (2 of 5), then one about T-2 (4 of 5); return their survey ids."""
    world.solve("T-1", KARI)
    world.order("O-1", KARI, "120.00")
    assert world.send() == ["sent"]
    first = world.answer(KARI, 2)
    world.solve("T-2", KARI)
    assert world.send() == ["sent"]
    world.smtp.wait_for(2)
    second = world.answer(KARI, 4)
    assert first != second
    return first, second


def test_the_card_shows_the_newest_answer_from_the_profile_and_follows_each_change_of_it(
        world, client, store, settings, round_trips):
    first, second = two_answers(world)
    auth = {"Authorization": f"Bearer {store.create_key('lead')}"}
    client.get(CARD, headers=auth)  # the key seen once: later checks ride with the card's reads

    card, trips = card_get(client, auth, round_trips)
    assert trips == 1
    assert card["last_response"] == named_answer(store, KARI)
    assert card["last_response"]["rating"] == 4 and card["last_response"]["ticket"] == "standard:T-2"
    assert copy_of(store, KARI).startswith(second + "|")

    # The newest answer re-rated: the card follows at once.
    now = int(time.time() * 1000)
    assert record_answer(store, settings, survey_of(store, KARI, second), 5, "", now) == 2
    card, trips = card_get(client, auth, round_trips)
    assert trips == 1 and card["last_response"]["rating"] == 5
    assert card["last_response"] == named_answer(store, KARI)

    # An older answer re-rated at a time before the newest one's stays behind it.
    assert record_answer(store, settings, survey_of(store, KARI, first), 1, "", now - 60_000) == 2
    card, _ = card_get(client, auth, round_trips)
    assert card["last_response"]["rating"] == 5 and card["last_response"] == named_answer(store, KARI)

    # The newest answer re-rated with a time older than it had: still the one the profile names, shown as it is.
    assert record_answer(store, settings, survey_of(store, KARI, second), 3, "", now - 30_000) == 2
    card, trips = card_get(client, auth, round_trips)
    assert trips == 1 and card["last_response"]["rating"] == 3
    assert card["last_response"] == named_answer(store, KARI)

    # Only its comment changed (no outbox entry): what the card shows of it is the answer as it now is, and the
    # comment itself is in the customer's answers.
    assert record_answer(store, settings, survey_of(store, KARI, second), 3, "Changed my mind", now) == 1
    card, trips = card_get(client, auth, round_trips)
    assert trips == 1 and card["last_response"] == named_answer(store, KARI)
    assert card["last_response"]["rating"] == 3
    answers = client.get(f"{CARD}/responses", headers=auth).json["responses"]
    assert [a["comment"] for a in answers if a["survey"] == second] == ["Changed my mind"]

    # An older answer re-rated now becomes the newest.
    assert record_answer(store, settings, survey_of(store, KARI, first), 2, "", now + 1_000) == 2
    card, _ = card_get(client, auth, round_trips)
    assert card["last_response"]["rating"] == 2 and card["last_response"]["ticket"] == "standard:T-1"
    assert card["last_response"] == named_answer(store, KARI)

    # The newest answer erased: the card shows none (as it did when it read the answer itself), still one trip.
    assert store.erase_survey(first, KARI)[0] == 1
    card, trips = card_get(client, auth, round_trips)
    assert trips == 1 and card["last_response"] is None and card["responses"] == 1
    assert copy_of(store, KARI) == f"{first}|"


def test_a_profile_without_the_copy_reads_the_answer_itself_and_rebuild_scores_gives_the_copy_live_kept(
        world, client, store, settings, round_trips):
    two_answers(world)
    world.solve("T-3", "per@example.no")
    assert world.send() == ["sent"]
    world.answer("per@example.no", 5)
    world.solve("T-4", "ola@example.no")
    assert world.send() == ["sent"]
    gone = world.answer("ola@example.no", 1)
    assert store.erase_survey(gone, "ola@example.no")[0] == 1
    emails = (KARI, "per@example.no", "ola@example.no")
    live = {email: copy_of(store, email) for email in emails}
    assert live["ola@example.no"] == f"{gone}|" and all(live.values())
    auth = {"Authorization": f"Bearer {store.create_key('lead')}"}
    expected = client.get(CARD, headers=auth).json

    # As a profile written before the copy existed (or one it went wrong in): the card reads the answer itself.
    store.redis.hdel(keys.customer(KARI, "profile"), CARD_COPY)
    store.redis.hset(keys.customer("per@example.no", "profile"), CARD_COPY, "elsewhere|1|1|csat5|x:1")
    card, trips = card_get(client, auth, round_trips)
    assert card == expected and trips == 2

    assert rebuild_scores(store, settings) == 3
    assert {email: copy_of(store, email) for email in emails} == live
    card, trips = card_get(client, auth, round_trips)
    assert card == expected and trips == 1
    assert store.rebuild_card_copies() == 0  # nothing left to put right


def test_a_request_turned_away_gets_no_card_data(world, env, store, client):
    two_answers(world)
    auth = {"Authorization": f"Bearer {store.create_key('lead')}"}
    assert client.get(CARD, headers=auth).status_code == 200
    admin_only = {"Authorization": f"Bearer {store.create_key('admin-only', ('admin',))}"}
    revoked = {"Authorization": f"Bearer {store.create_key('gone')}"}
    assert client.get(CARD, headers=revoked).status_code == 200  # remembered by this process
    assert store.revoke_key("gone")
    limited = create_app(load_settings({**env, "TRACKER_API_RATE_LIMIT": "1"}), store,
                         enqueue=lambda *args: None).test_client()
    busy = {"Authorization": f"Bearer {store.create_key('busy')}"}
    # Three requests: even if a minute boundary falls among them, one window sees a second.
    over = next(r for r in (limited.get(CARD, headers=busy) for _ in range(3)) if r.status_code != 200)

    turned_away = [
        (client.get(CARD), 401), (client.get(CARD, headers={"Authorization": "Bearer trk_wrong"}), 401),
        (client.get(CARD, headers=revoked), 401), (client.get(CARD, headers=admin_only), 403), (over, 429)]
    for response, status in turned_away:
        assert response.status_code == status
        assert set(response.json) == {"code", "status", "message"}, response.json
        body = response.get_data(as_text=True)
        assert KARI not in body and "Kari" not in body and "standard:T-2" not in body
    assert turned_away[0][0].headers["WWW-Authenticate"] == 'Bearer realm="tracker"'
    assert turned_away[2][0].headers["WWW-Authenticate"] == 'Bearer realm="tracker"'
    assert over.headers["RateLimit-Limit"] == "1" and 1 <= int(over.headers["Retry-After"]) <= 60


@pytest.mark.parametrize("card", [
    ScoreCard(id=KARI, score=87.5, average=80.0, csat=75.0, responses=4, surveys_sent=5, response_rate=80.0,
              trend=5.0, nps=None, name="Kari", last_response=LastResponse(5, "csat5", 1_795_003_200_123, "zendesk:1"),
              orders=OrdersSummary(3, "1499.00", "NOK", {"EUR": "10.50", "NOK": "1499.00"}), at_risk=False),
    ScoreCard(id="per@example.no", score=None, average=None, csat=None, responses=0, surveys_sent=1,
              response_rate=0.0, trend=None, nps=-100.0, name=None, last_response=None,
              orders=OrdersSummary(0, "0.00", None, {}), at_risk=False),
    ScoreCard(id="ola@example.no", score=12.0, average=0.0, csat=0.0, responses=1, surveys_sent=1,
              response_rate=100.0, trend=-1.25, nps=None, name="Ola", last_response=LastResponse(0, "nps", 1, None),
              orders=None, at_risk=True),
])
def test_the_card_json_is_what_the_schema_dumps_key_for_key(card):
    assert json.dumps(card_json(card)) == json.dumps(schema(ScoreCardSchema).dump(card))


def test_the_card_of_the_api_is_the_card_customer_card_reads(world, client, store, settings):
    two_answers(world)
    auth = {"Authorization": f"Bearer {store.create_key('lead')}"}
    shown = client.get(CARD, headers=auth).json
    read = customer_card(store, settings, KARI, int(time.time() * 1000))
    assert shown == schema(ScoreCardSchema).dump(read)
