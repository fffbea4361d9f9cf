"""The loop in-process: webhook, log, apply, sweep, mail, answer, score (the worker runs in test_e2e)."""

from __future__ import annotations

import time

from tests.support import drain, iso, send_all, solved_event, survey_link
from tests.test_outbox import assert_equals_a_rebuild
from tracker.config import load_settings
from tracker.scores.rebuild import rebuild_scores
from tracker.surveys import due as surveys


def test_a_solved_ticket_becomes_a_survey_an_answer_and_a_score(post_event, store, settings, smtp, client):
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    response = post_event("standard", solved_event(at=now))
    assert response.status_code == 202, response.json
    assert response.json == {"status": "accepted", "events": 1}
    assert drain(store, settings) == 1
    assert [o.status for o in send_all(store, settings)] == ["sent"]
    (mail,) = smtp.wait_for(1)
    assert mail["To"].addresses[0].addr_spec == "kari@example.no"
    path = survey_link(mail, 4)
    page = client.get(path + "?rating=4")
    assert page.status_code == 200
    assert b'value="4" checked' in page.data
    assert store.response(path.split("/")[2].split("-")[0]) is None
    answered = client.post(path, data={"rating": "4", "comment": "Quick and kind"})
    assert answered.status_code == 200, answered.data
    key = store.create_key("lead")
    card = client.get("/api/v1/customers/Kari@Example.no", headers={"Authorization": f"Bearer {key}"}).json
    assert card["responses"] == 1 and card["average"] == 75.0 and card["csat"] == 100.0
    assert card["surveys_sent"] == 1 and card["response_rate"] == 100.0
    assert card["last_response"]["rating"] == 4
    before = {k: card[k] for k in ("score", "average", "csat", "responses", "surveys_sent")}
    rebuild_scores(store, settings)
    after = client.get("/api/v1/customers/kari@example.no", headers={"Authorization": f"Bearer {key}"}).json
    assert {k: after[k] for k in before} == before


def test_the_timeline_shows_tickets_orders_surveys_and_answers_in_time_order(post_event, store, settings, smtp,
                                                                            client):
    now = time.time()
    iso = lambda offset: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + offset))  # noqa: E731
    order = {"type": "order.created", "id": "evt-o-1", "occurred_at": iso(-120),
             "order": {"id": "O-1", "total": "149.00", "currency": "nok"},
             "customer": {"email": "kari@example.no", "name": "Kari"}}
    assert post_event("standard", order).status_code == 202
    assert post_event("standard", solved_event(ticket="T-9", at=iso(-60))).status_code == 202
    drain(store, settings)
    send_all(store, settings)
    (mail,) = smtp.wait_for(1)
    client.post(survey_link(mail, 2), data={"rating": "2", "comment": "Too slow"})
    key = store.create_key("lead")
    body = client.get("/api/v1/customers/kari@example.no/timeline", headers={"Authorization": f"Bearer {key}"}).json
    kinds = [e["kind"] for e in body["events"]]
    assert kinds == ["order.created", "ticket.solved", "survey.sent", "answer"], body
    assert body["events"][0]["total"] == "149.00" and body["events"][0]["currency"] == "NOK"
    assert body["events"][3]["comment"] == "Too slow" and body["events"][3]["satisfied"] is False
    card = client.get("/api/v1/customers/kari@example.no", headers={"Authorization": f"Bearer {key}"}).json
    assert card["orders"] == {"count": 1, "total": "149.00", "currency": "NOK", "totals": {"NOK": "149.00"}}


def _order_event(kind: str, at: str, order_id: str = "O-7") -> dict:
    return {"type": kind, "id": f"evt-{order_id}-{kind}", "occurred_at": at,
            "order": {"id": order_id, "total": "499.00", "currency": "NOK"},
            "customer": {"id": "c-42", "email": "kari@example.no", "name": "Kari", "locale": "en"}}


def test_post_purchase_surveys_are_off_by_default(post_event, store, settings, smtp):
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    assert post_event("standard", _order_event("order.fulfilled", at)).status_code == 202
    drain(store, settings)
    assert send_all(store, settings) == []
    assert surveys.sweep(store, int(time.time() * 1000) + 10**9)[1] == []  # nothing is due, ever


def test_a_fulfilled_order_gets_a_post_purchase_survey_when_turned_on(post_event, store, env, smtp, client):
    settings = load_settings({**env, "TRACKER_ORDER_SURVEY_DELAY": "0"})
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 5))
    assert post_event("standard", _order_event("order.created", at)).status_code == 202
    assert post_event("standard", _order_event("order.fulfilled", at)).status_code == 202
    drain(store, settings)
    assert [o.status for o in send_all(store, settings)] == ["sent"]
    (mail,) = smtp.wait_for(1)
    assert mail["Subject"] == "How was your order #O-7?"
    page = client.get(survey_link(mail, 5))
    assert "How satisfied are you with your order?" in page.get_data(as_text=True)
    assert client.post(survey_link(mail, 5), data={"rating": "5"}).status_code == 200
    key = store.create_key("lead")
    card = client.get("/api/v1/customers/kari@example.no", headers={"Authorization": f"Bearer {key}"}).json
    assert card["responses"] == 1 and card["last_response"]["ticket"] == "order:standard:O-7"


def test_an_order_cancelled_before_its_survey_is_due_gets_none(post_event, store, env, smtp):
    settings = load_settings({**env, "TRACKER_ORDER_SURVEY_DELAY": "3600"})
    now = time.time()
    fulfilled = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 60))
    refunded = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 30))
    assert post_event("standard", _order_event("order.refunded", refunded)).status_code == 202
    assert post_event("standard", _order_event("order.fulfilled", fulfilled)).status_code == 202
    drain(store, settings)
    assert surveys.sweep(store, int(now * 1000) + 10**9)[1] == []  # nothing is due, ever


def test_an_operator_mail_template_replaces_the_packaged_one(post_event, store, env, smtp, tmp_path):
    (tmp_path / "mail").mkdir()
    (tmp_path / "mail" / "survey.txt").write_text(
        "ACME CARES {{ greeting }}\n{% for b in buttons %}{{ b.value }}: {{ b.url }}\n{% endfor %}")
    custom = load_settings({**env, "TRACKER_TEMPLATE_DIR": str(tmp_path)})
    assert post_event("standard", solved_event(at=time.strftime("%Y-%m-%dT%H:%M:%SZ"))).status_code == 202
    drain(store, custom)
    send_all(store, custom)
    (mail,) = smtp.wait_for(1)
    text = mail.get_body(("plain",)).get_content()
    assert text.startswith("ACME CARES Hei Kari,") and "?rating=5" in text
    assert "?rating=5" in mail.get_body(("html",)).get_content()  # the packaged HTML part is kept


def test_an_answer_given_before_the_send_is_recorded_still_counts_the_survey_sent(post_event, store, settings,
                                                                                   smtp, client):
    """A customer quicker than the sender: the answer lands after the mail server has the mail and before the sender
    records the send (which waits through a Redis outage for up to 45 s). The send counts once all the same, the
    survey stays answered, and the live numbers are what a rebuild gives."""
    answered: list[int] = []
    smtp.on_data = lambda mail: answered.append(client.post(survey_link(mail, 2), data={"rating": "2"}).status_code)
    assert post_event("standard", solved_event(ticket="Q-1", at=iso(3600))).status_code == 202
    drain(store, settings)
    assert [outcome.status for outcome in send_all(store, settings)] == ["sent"]
    assert answered == [200]
    (survey,) = store.customer_surveys("kari@example.no")
    assert survey.status == "answered" and survey.sent_at_ms
    auth = {"Authorization": f"Bearer {store.create_key('lead')}"}
    card = client.get("/api/v1/customers/kari@example.no", headers=auth).get_json()
    assert (card["surveys_sent"], card["responses"], card["response_rate"]) == (1, 1, 100.0)
    assert_equals_a_rebuild(store, settings)
