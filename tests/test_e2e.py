"""End to end through real parts: HTTP server, Redis, Celery worker and beat, SMTP server."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

from tests.signing import signed
from tests.support import solved_event, tracker, wait_until
from tests.test_outbox import assert_same, state
from tracker.config import load_settings
from tracker.mail.http import make_sender
from tracker.store import Store
from tracker.surveys import due
from workers.celery_app import create_celery, queue_length

pytestmark = pytest.mark.e2e


def _now_iso(offset: float = 0) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + offset))


def _post(base: str, source: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> requests.Response:
    raw = json.dumps(body).encode()
    extra = dict(headers or {})
    signed_headers, query = signed(source, raw, headers=extra)
    return requests.post(f"{base}/webhooks/{source}", data=raw, params=query, timeout=10,
                         headers={"Content-Type": "application/json", **extra, **signed_headers})


def _answer_from_mail(base: str, mail: Any, rating: int, comment: str) -> str:
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    link = re.search(rf"https?://[^\s\"<>]+/s/([a-z2-7]+-[a-z2-7]+)\?rating={rating}\b", text)
    assert link, text
    assert f"/s/{link.group(1)}?rating={rating}" in html
    token = link.group(1)
    page = requests.get(f"{base}/s/{token}", params={"rating": rating}, timeout=10)
    assert page.status_code == 200
    assert f'value="{rating}" checked' in page.text
    thanks = requests.post(f"{base}/s/{token}", data={"rating": str(rating), "comment": comment}, timeout=10)
    assert thanks.status_code == 200, thanks.text
    return token


def _card(base: str, key: str, customer: str) -> dict[str, Any]:
    response = requests.get(f"{base}/api/v1/customers/{customer}", headers={"Authorization": f"Bearer {key}"},
                            timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def live(env: dict[str, str], store: Store, live_server: str, start_worker: Any) -> dict[str, Any]:
    start_worker(beat=True)
    return {"base": live_server, "key": store.create_key("lead")}


def test_a_signed_standard_solved_event_ends_as_a_score_read_over_the_api(live, smtp):
    response = _post(live["base"], "standard", solved_event(ticket="E-1", at=_now_iso()))
    assert response.status_code == 202, response.text
    (mail,) = smtp.wait_for(1, timeout=60)
    assert mail["Subject"] and "Card declined" in mail["Subject"]
    _answer_from_mail(live["base"], mail, 5, "Very helpful")
    # The worker records the send once the mail server said 250, which can land after a quick customer's answer.
    card = wait_until(lambda: (found := _card(live["base"], live["key"], "kari@example.no"))["surveys_sent"] == 1
                      and found, what="the send recorded")
    assert card["responses"] == 1
    assert card["score"] == 100.0 and card["csat"] == 100.0 and card["surveys_sent"] == 1
    assert card["last_response"]["ticket"] == "standard:E-1"
    responses = requests.get(f"{live['base']}/api/v1/customers/kari@example.no/responses",
                             headers={"Authorization": f"Bearer {live['key']}"}, timeout=10).json()
    assert responses["responses"][0]["comment"] == "Very helpful"
    assert responses["responses"][0]["agent"] == {"id": "a-7", "name": "Ola"}


def test_a_zendesk_trigger_for_a_solved_ticket_ends_as_a_score(live, smtp):
    body = {
        "ticket": {"id": "1001", "status": "Solved", "subject": "Refund missing",
                   "updated_at": _now_iso(), "via": "Mail", "brand": "Acme", "group": "Billing",
                   "tags": "vip refund"},
        "requester": {"id": "501", "email": "Per@Example.no", "name": "Per", "locale": "Norsk (bokmål)"},
        "assignee": {"id": "77", "email": "ola@acme.test", "name": "Ola"},
    }
    response = _post(live["base"], "zendesk", body, headers={"x-zendesk-webhook-invocation-id": "inv-1"})
    assert response.status_code == 202, response.text
    (mail,) = smtp.wait_for(1, timeout=60)
    assert mail["To"].addresses[0].addr_spec == "per@example.no"
    assert mail["Content-Language"] == "nb"
    _answer_from_mail(live["base"], mail, 2, "Slow")
    card = _card(live["base"], live["key"], "per@example.no")
    assert card["responses"] == 1 and card["average"] == 25.0 and card["csat"] == 0.0
    assert card["at_risk"] is True


def _quiet(store: Store, env: dict[str, str]) -> Callable[[], bool]:
    """Return a check that the loop has nothing left to do: the log applied, nothing due, no task queued, and
    every outbox forwarded (the counts of a chunk's sends reach the aggregates a bucket at a time)."""
    queued = queue_length(create_celery(load_settings(env)))

    def quiet() -> bool:
        log = store.lag()
        return not (log.pending or log.lag) and store.metric_counts().oldest_due_ms is None \
            and queued() == 0 and not any(store.outbox_waiting().values())

    return quiet


def test_a_worker_killed_mid_batch_loses_nothing_and_counts_nothing_twice(env, store, live_server, start_worker,
                                                                          smtp):
    # Events go into the log with no worker running; a worker is killed while it drains them.
    for n in range(300):
        response = _post(live_server, "standard", solved_event(ticket=f"K-{n}", email_address=f"c{n}@example.no",
                                                               at=_now_iso(-n)))
        assert response.status_code == 202
    victim = start_worker()

    def reading() -> bool:
        log = store.lag()
        return log.lag < log.length  # a shard's cursor has moved: the victim is applying

    wait_until(reading, interval=0.001, what="the worker to start applying the log")
    victim.kill()
    # The victim's shard waits for its lease to run out (ingest.LEASE_MS), then beat's drain applies it from
    # its cursor again; the other shards go on at once.
    survivor = start_worker(beat=True)
    mails = smtp.wait_for(300, timeout=120)
    assert len({m["To"].addresses[0].addr_spec for m in mails}) == 300
    quiet = _quiet(store, env)
    # Nothing more may go out. Once the loop is quiet, a marker's survey is the next mail: a duplicate of
    # the 300 could only come from work still queued, due or unapplied, and the marker goes after all of it.
    wait_until(quiet, what="the log applied, nothing due and no task queued")
    marker = _post(live_server, "standard", solved_event(ticket="K-marker", email_address="marker@example.no",
                                                         at=_now_iso()))
    assert marker.status_code == 202
    mails = smtp.wait_for(301, timeout=60)
    assert mails[300]["To"].addresses[0].addr_spec == "marker@example.no"
    wait_until(quiet, what="the marker's survey to be marked sent")
    assert len(smtp.messages) == 301
    assert store.metric_counts().sent == 301
    survivor.stop()


def test_the_smtp_server_refusing_then_accepting_delivers_exactly_one_mail(live, smtp, store, env):
    smtp.refuse = 2
    response = _post(live["base"], "standard", solved_event(ticket="R-1", at=_now_iso()))
    assert response.status_code == 202
    settings, quiet = load_settings(env), _quiet(store, env)

    # The retry backoff starts at 15 s; rather than wait for it, sweep as the product would an hour from now
    # (a retry is due by then) and send what that sweep leases, as the worker's task does.
    def retried() -> bool:
        now_ms = int(time.time() * 1000)
        claimed, members = due.sweep(store, now_ms + 3_600_000)
        with make_sender(settings) as sender:
            for member in members:
                due.send_due(store, settings, sender, member, claimed, now_ms)
        return not smtp.refuse and bool(smtp.messages)

    wait_until(retried, timeout=60, interval=0.5, what="the mail to be retried and accepted")
    (survey,) = wait_until(lambda: [s for s in store.customer_surveys("kari@example.no") if s.status == "sent"],
                           what="the survey to be marked sent")
    wait_until(quiet, what="the loop to have nothing left to do")
    assert len(smtp.messages) == 1
    assert survey.status == "sent" and survey.attempts == 3


def test_rebuild_scores_equals_the_live_aggregates_after_the_loop(live, smtp, store, env):
    """Answers given and changed over real processes; the rebuild from the stored answers leaves every sum,
    rollup, index and ranked set as the live path built them (on the cluster too)."""
    people = [("ann", "a-1", "billing", 5), ("bo", "a-1", "support", 2), ("cy", "a-2", "billing", 4),
              ("di", "", "", 1)]
    for name, agent, team, _ in people:
        event = solved_event(ticket=f"RB-{name}", email_address=f"{name}@example.no", at=_now_iso())
        event["customer"]["id"] = f"c-{name}"
        event["ticket"]["team"] = team
        event["ticket"]["agent"] = {"id": agent, "name": agent.upper()} if agent else None
        if not agent:
            del event["ticket"]["agent"]
        assert _post(live["base"], "standard", event).status_code == 202
    mails = smtp.wait_for(len(people), timeout=60)
    by_address = {mail["To"].addresses[0].addr_spec: mail for mail in mails}
    for name, _, _, rating in people:
        _answer_from_mail(live["base"], by_address[f"{name}@example.no"], rating, f"said {name}")
    _answer_from_mail(live["base"], by_address["bo@example.no"], 4, "changed my mind")  # a change moves every sum
    wait_until(_quiet(store, env), what="the loop to settle")
    before = state(store)
    assert before["aggregates"][("overall", "all")].n == len(people)
    assert tracker(env, "rebuild-scores").returncode == 0
    assert_same(before, state(store))
