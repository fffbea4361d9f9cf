"""The leads' API behind keys, the probes, and the error envelope on every /api path."""

from __future__ import annotations

import logging
import time

import pytest

from tests.support import drain, send_all, solved_event, survey_link
from tracker.cli.dev import free_port
from tracker.config import load_settings
from tracker.store import Store
from tracker.web.app import create_app


@pytest.fixture
def key(store):
    return store.create_key("lead")


@pytest.fixture
def answered(post_event, store, settings, env, smtp, client):
    """Kari answered two surveys: 5 then 2."""
    now = time.time()
    for n, rating in ((1, 5), (2, 2)):
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 100 + n))
        assert post_event("standard", solved_event(ticket=f"A-{n}", at=at)).status_code == 202
        drain(store, settings)
        send_all(store, load_settings({**env, "TRACKER_SURVEY_THROTTLE_DAYS": "0"}))
        mail = smtp.wait_for(n)[-1]
        answer = client.post(survey_link(mail, rating), data={"rating": str(rating), "comment": f"c{n}"})
        assert answer.status_code == 200


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Bearer trk_nope", "Basic dXNlcjpwYXNz",
                                    "bearer trk_" + "x" * 500, "Bearer \u00e6\u00f8\u00e5"])
@pytest.mark.parametrize("path", ["/api/v1/customers/kari@example.no", "/api/v1/customers/kari@example.no/responses",
                                  "/api/v1/customers/kari@example.no/timeline", "/api/v1/nothing-here"])
def test_every_api_path_needs_a_valid_key(client, path, header):
    headers = {"Authorization": header} if header is not None else {}
    response = client.get(path, headers=headers)
    assert response.status_code == 401
    assert response.json["code"] == 401 and response.json["status"] == "Unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_revoked_key_stops_working_at_once(client, store, key):
    path = "/api/v1/customers/nobody@example.no"
    assert client.get(path, headers={"Authorization": f"Bearer {key}"}).status_code == 404
    assert store.revoke_key("lead")
    assert client.get(path, headers={"Authorization": f"Bearer {key}"}).status_code == 401


def test_only_the_digest_of_a_key_is_stored(store, key):
    dump = " ".join(str(store.redis.dump(k)) + str(store.redis.get(k) if store.redis.type(k) == "string" else "")
                    for k in store.redis.keys("*"))
    assert key not in dump and key[4:] not in dump


def test_an_unknown_customer_is_404_with_the_envelope(client, key):
    response = client.get("/api/v1/customers/nobody@example.no", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 404
    assert set(response.json) == {"code", "status", "message"}


def test_the_score_card_has_every_field_of_the_contract(client, key, answered):
    card = client.get("/api/v1/customers/KARI@example.no", headers={"Authorization": f"Bearer {key}"}).json
    assert set(card) >= {"customer", "name", "score", "average", "csat", "responses", "surveys_sent",
                         "response_rate", "trend", "nps", "last_response", "orders", "at_risk"}
    assert card["customer"] == "kari@example.no" and card["name"] == "Kari"
    assert card["responses"] == 2 and card["average"] == 62.5 and card["csat"] == 50.0
    assert card["nps"] is None and card["trend"] is None
    assert card["last_response"]["rating"] == 2 and card["last_response"]["ticket"] == "standard:A-2"
    assert 25.0 < card["score"] < 100.0


def test_responses_come_newest_first_a_page_at_a_time(client, key, answered):
    auth = {"Authorization": f"Bearer {key}"}
    first = client.get("/api/v1/customers/kari@example.no/responses?limit=1", headers=auth).json
    assert [r["rating"] for r in first["responses"]] == [2] and first["next_cursor"]
    second = client.get(f"/api/v1/customers/kari@example.no/responses?limit=1&cursor={first['next_cursor']}",
                        headers=auth).json
    assert [r["rating"] for r in second["responses"]] == [5] and second["next_cursor"] is None
    assert second["responses"][0]["comment"] == "c1" and second["responses"][0]["ticket"] == "standard:A-1"


@pytest.mark.parametrize("query", ["limit=0", "limit=abc", "limit=100000", "cursor=-1", "cursor=x"])
def test_a_bad_listing_query_is_422_naming_the_field(client, key, answered, query):
    response = client.get(f"/api/v1/customers/kari@example.no/responses?{query}",
                          headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 422
    assert set(response.json["errors"]) <= {"limit", "cursor"} and response.json["errors"]


def test_the_probes_tell_up_and_ready(client):
    assert client.get("/healthz").json == {"status": "ok"}
    assert client.get("/readyz").status_code == 200


def test_readiness_fails_once_the_stores_redis_lost_its_data_and_a_worker_says_so(client, store, settings, caplog):
    # A Redis restarted without persistence (or flushed) under the running processes: it answers, empty.
    from workers import tasks

    store.redis.flushdb()
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json["redis"] == "data_lost", ready.json
    assert "restarted without persistence or was flushed" in ready.json["reason"]
    with caplog.at_level(logging.ERROR, logger="workers.tasks"):
        tasks._data_lost_said[0] = 0.0
        tasks._say_if_data_lost(store)
        tasks._say_if_data_lost(store)  # said once every few minutes, not on each of beat's runs
    assert [r.getMessage() for r in caplog.records if r.name == "workers.tasks"] == [
        "the store's Redis no longer holds the store this worker opened (its store id is gone or another): it "
        "restarted without persistence or was flushed; restore it from a backup or an export, then restart the "
        "tracker's processes"]
    # A process started since on the empty Redis begins a new store there: this one still says what it lost, and
    # a process started now goes on with the new one.
    restarted = Store.from_url(settings.redis_url)
    assert client.get("/readyz").json["redis"] == "data_lost"
    assert create_app(settings, restarted, enqueue=lambda task: None).test_client().get("/readyz").json == {
        "status": "ok", "redis": "ok"}


def test_readiness_fails_and_the_api_answers_503_when_redis_is_down(settings, key):
    down = Store.from_url(f"redis://127.0.0.1:{free_port()}/0")
    client = create_app(settings, down, enqueue=lambda task: None).test_client()
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json == {"status": "unavailable", "redis": "unreachable"}
    api = client.get("/api/v1/customers/kari@example.no", headers={"Authorization": f"Bearer {key}"})
    assert api.status_code == 503 and api.headers["Retry-After"] and api.json["code"] == 503
