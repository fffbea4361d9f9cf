"""Alerts on unhappy answers, delivered to a real local HTTP server (so private addresses are allowed here)."""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import ipaddress
import json
import re
import ssl
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.support import drain, make_env, send_all, solved_event, survey_link, tracker, wait_until
from tracker.alerts.delivery import AlertRefused, AlertRetryable, alert_secret, deliver_alert, is_slack
from tracker.alerts.held import HELD_FOR_MS, resend_held
from tracker.alerts.payload import alerts_for
from tracker.cli.dev import free_port
from tracker.config import load_settings
from tracker.web.app import create_app
from workers.celery_app import create_celery, web_enqueue

PATH = "/alerts"
EMAIL = "kari@example.no"


@pytest.fixture
def env(redis_url: str, smtp: Any, httpserver: HTTPServer) -> dict[str, str]:
    return make_env(redis_url, smtp.port, TRACKER_ALERT_URLS=httpserver.url_for(PATH),
                    TRACKER_ALERT_ALLOW_PRIVATE="1")


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _sent_survey(post_event: Any, store: Any, settings: Any, smtp: Any) -> str:
    """Run a solved ticket through to a survey mail; return the survey path."""
    assert post_event("standard", solved_event(at=_now_iso())).status_code == 202
    drain(store, settings)
    assert [o.status for o in send_all(store, settings)] == ["sent"]
    (mail,) = smtp.wait_for(1)
    return survey_link(mail, 1)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _alerts(enqueued: list[Any]) -> list[tuple[str, str, int]]:
    """Return the alert tasks the web enqueued: (name, survey id, rating)."""
    return [task for task in enqueued if isinstance(task, tuple) and task[0] == "tracker.send_alert"]


def _payload(store: Any, settings: Any, post_event: Any, smtp: Any, client: Any, enqueued: list[Any]) -> dict:
    """Answer unhappily, then build the alert as the task does from what the web enqueued."""
    path = _sent_survey(post_event, store, settings, smtp)
    assert client.post(path, data={"rating": "2", "comment": "Nobody called back"}).status_code == 200
    ((_, sid, rating),) = _alerts(enqueued)
    ((_, body),) = alerts_for(store, settings, sid, rating, _now_ms())
    return json.loads(body)


def test_an_unhappy_answer_enqueues_one_alert_by_survey_id_and_a_happy_or_repeated_one_none(
        post_event, store, settings, smtp, client, enqueued, httpserver):
    path = _sent_survey(post_event, store, settings, smtp)
    sid = path.split("/")[2].split("-")[0]
    client.post(path, data={"rating": "2", "comment": "Slow"})
    assert _alerts(enqueued) == [("tracker.send_alert", sid, 2)]  # the id, never the payload
    assert [url for url, _ in alerts_for(store, settings, sid, 2, _now_ms())] == [httpserver.url_for(PATH)]
    client.post(path, data={"rating": "2", "comment": "Slow"})  # the same answer again
    client.post(path, data={"rating": "2", "comment": "Slow, and rude"})  # only the comment changed
    assert len(_alerts(enqueued)) == 1
    client.post(path, data={"rating": "1", "comment": "Worse"})  # a new unhappy rating
    assert len(_alerts(enqueued)) == 2
    assert json.loads(alerts_for(store, settings, sid, 1, _now_ms())[0][1])["data"]["rating"] == 1
    client.post(path, data={"rating": "5", "comment": "Sorted after all"})
    assert len(_alerts(enqueued)) == 2
    assert _alerts(enqueued)[1] == ("tracker.send_alert", sid, 1)


def test_the_alert_task_delivers_to_every_url_and_drops_an_answer_changed_since(
        post_event, store, settings, env, smtp, client, enqueued):
    two = load_settings({**env, "TRACKER_ALERT_URLS": "http://one.example/hook,http://two.example/hook#slack"})
    path = _sent_survey(post_event, store, settings, smtp)
    client.post(path, data={"rating": "2", "comment": "Slow"})
    ((_, sid, rating),) = _alerts(enqueued)
    (first, second) = alerts_for(store, two, sid, rating, _now_ms())
    assert [first[0], second[0]] == list(two.alert_urls) and first[1] == second[1]
    client.post(path, data={"rating": "4"})  # changed before the task ran: that answer is not unhappy
    assert alerts_for(store, two, sid, rating, _now_ms()) == []


def test_the_alert_names_customer_rating_comment_ticket_agent_team_brand_source_and_score(
        post_event, store, settings, smtp, client, enqueued):
    payload = _payload(store, settings, post_event, smtp, client, enqueued)
    assert payload["type"] == "answer.unsatisfied"
    data = payload["data"]
    assert data["customer"] == {"email": EMAIL, "name": "Kari", "score": 25.0, "at_risk": True}
    assert (data["rating"], data["scale"], data["value"]) == (2, "csat5", 25.0)
    assert data["comment"] == "Nobody called back"
    assert data["ticket"] == "standard:T-1001" and data["subject"] == "Card declined"
    assert data["agent"] == {"id": "a-7", "name": "Ola"}
    assert (data["team"], data["brand"], data["source"]) == ("billing", "acme", "standard")
    assert data["answered_at"].endswith("Z") and payload["timestamp"] == data["answered_at"]


def test_a_generic_alert_is_signed_the_standard_webhooks_way_with_the_same_id_on_every_attempt(
        post_event, store, settings, smtp, client, enqueued, httpserver):
    payload = _payload(store, settings, post_event, smtp, client, enqueued)
    httpserver.expect_request(PATH, method="POST").respond_with_data("", status=204)
    assert deliver_alert(httpserver.url_for(PATH), payload, settings) == 204
    assert deliver_alert(httpserver.url_for(PATH), payload, settings) == 204
    (first, _), (second, _) = httpserver.log
    secret = alert_secret(settings)
    assert secret.startswith("whsec_")
    key = base64.b64decode(secret.removeprefix("whsec_"))
    for request in (first, second):
        msg_id, stamp = request.headers["webhook-id"], request.headers["webhook-timestamp"]
        expected = base64.b64encode(hmac.new(key, f"{msg_id}.{stamp}.".encode() + request.get_data(),
                                             hashlib.sha256).digest()).decode()
        assert request.headers["webhook-signature"] == f"v1,{expected}"
        assert abs(int(stamp) - time.time()) < 60
        assert request.headers["Content-Type"] == "application/json"
        assert json.loads(request.get_data()) == payload
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.headers["webhook-id"].startswith("msg_")


def test_the_alert_secret_command_prints_the_whsec_key_receivers_verify_with(env, settings):

    printed = tracker(env, "alert-secret")
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.strip() == alert_secret(settings)


def test_a_slack_webhook_gets_slacks_message_format(post_event, store, settings, smtp, client, enqueued,
                                                    httpserver):
    assert is_slack("https://hooks.slack.com/services/T000/B000/XXXX")
    assert not is_slack("https://example.com/services/T000/B000/XXXX")
    assert not is_slack("https://hooks.slack.com/other")
    payload = _payload(store, settings, post_event, smtp, client, enqueued)
    httpserver.expect_request("/services/T000/B000/XXXX", method="POST").respond_with_data("ok")
    # The operator marks a Slack-compatible endpoint (a proxy, Mattermost) with #slack.
    assert deliver_alert(httpserver.url_for("/services/T000/B000/XXXX") + "#slack", payload, settings) == 200
    ((request, _),) = httpserver.log
    body = json.loads(request.get_data())
    assert set(body) == {"text", "blocks"}
    assert "Kari" in body["text"] and "2/5" in body["text"] and "standard:T-1001" in body["text"]
    section = body["blocks"][0]["text"]
    assert section["type"] == "mrkdwn" and "> Nobody called back" in section["text"]
    context = body["blocks"][1]["elements"][0]["text"]
    assert "agent: Ola" in context and "team: billing" in context and "customer score: 25" in context


def test_slack_markup_in_customer_text_is_escaped(settings, httpserver):
    payload = {"type": "answer.unsatisfied", "timestamp": "2026-11-22T10:00:00Z", "data": {
        "survey": "s1", "customer": {"email": "a@example.no", "name": "<!channel> & co", "score": None},
        "rating": 1, "scale": "csat5", "value": 0, "comment": "<https://evil.test|click>", "ticket": None}}
    httpserver.expect_request(PATH).respond_with_data("ok")
    deliver_alert(httpserver.url_for(PATH) + "#slack", payload, settings)
    text = json.loads(httpserver.log[0][0].get_data())["blocks"][0]["text"]["text"]
    assert "<!channel>" not in text and "&lt;!channel&gt; &amp; co" in text
    assert "&lt;https://evil.test|click&gt;" in text


def _unhappy() -> dict[str, Any]:
    return {"type": "answer.unsatisfied", "timestamp": "2026-11-22T10:00:00Z",
            "data": {"survey": "s1", "customer": {"email": "a@example.no"}, "rating": 1, "scale": "csat5"}}


def test_a_slow_endpoint_times_out_and_is_retryable(settings, httpserver):
    def slow(request: Request) -> Response:
        time.sleep(1.5)
        return Response("late")

    httpserver.expect_request(PATH).respond_with_handler(slow)
    with pytest.raises(AlertRetryable, match="timed out"):
        deliver_alert(httpserver.url_for(PATH), _unhappy(), settings, timeout=(3, 0.3))


def test_an_endpoint_that_is_not_listening_is_retryable(settings):
    with pytest.raises(AlertRetryable, match="cannot reach"):
        deliver_alert(f"http://127.0.0.1:{free_port()}/alerts", _unhappy(), settings)


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503])
def test_throttling_and_server_errors_are_retryable(settings, httpserver, status):
    httpserver.expect_request(PATH).respond_with_data("busy", status=status)
    with pytest.raises(AlertRetryable, match=str(status)):
        deliver_alert(httpserver.url_for(PATH), _unhappy(), settings)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422])
def test_client_errors_are_refused_for_good(settings, httpserver, status):
    httpserver.expect_request(PATH).respond_with_data("no", status=status)
    with pytest.raises(AlertRefused, match=str(status)):
        deliver_alert(httpserver.url_for(PATH), _unhappy(), settings)


def test_a_redirect_is_not_followed(settings, httpserver):
    httpserver.expect_request(PATH).respond_with_data("", status=302, headers={"Location": "/elsewhere"})
    httpserver.expect_request("/elsewhere").respond_with_data("ok")
    with pytest.raises(AlertRefused, match="redirects are not followed"):
        deliver_alert(httpserver.url_for(PATH), _unhappy(), settings)
    assert [request.path for request, _ in httpserver.log] == [PATH]


@pytest.mark.parametrize("host", [
    "127.0.0.1", "[::1]", "localhost", "[::ffff:127.0.0.1]", "10.1.2.3", "172.16.0.1", "192.168.1.10",
    "169.254.169.254", "[fd00:ec2::254]", "[fe80::1]", "0.0.0.0", "100.64.0.1", "2130706433",
])
def test_private_loopback_link_local_and_metadata_addresses_are_refused_before_connecting(
        env, httpserver, host):
    httpserver.expect_request(PATH).respond_with_data("ok")
    closed = load_settings({**env, "TRACKER_ALERT_ALLOW_PRIVATE": "0"})
    with pytest.raises(AlertRefused, match=r"TRACKER_ALERT_ALLOW_PRIVATE|metadata"):
        deliver_alert(f"http://{host}:{httpserver.port}{PATH}", _unhappy(), closed)
    assert httpserver.log == []


@pytest.mark.parametrize("host", ["169.254.169.254", "[fd00:ec2::254]", "[::ffff:169.254.169.254]"])
def test_cloud_metadata_addresses_are_refused_even_when_private_addresses_are_allowed(settings, host):
    assert settings.alert_allow_private
    with pytest.raises(AlertRefused, match="metadata"):
        deliver_alert(f"http://{host}/latest/meta-data/", _unhappy(), settings)


def test_a_host_name_is_pinned_to_the_address_that_was_checked_and_keeps_its_host_header(settings, httpserver):
    httpserver.expect_request(PATH).respond_with_data("ok")
    assert deliver_alert(f"http://localhost:{httpserver.port}{PATH}", _unhappy(), settings) == 200
    ((request, _),) = httpserver.log
    assert request.headers["Host"] == f"localhost:{httpserver.port}"


def _certificate(directory: Path, name: str) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.mark.parametrize(("certified", "delivered"), [("localhost", True), ("someone-else.test", False)])
def test_https_to_a_pinned_address_still_checks_the_certificate_against_the_host_name(
        settings, tmp_path, certified, delivered):
    cert, key = _certificate(tmp_path, certified)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = HTTPServer(host="127.0.0.1", port=free_port(), ssl_context=context)
    server.expect_request(PATH).respond_with_data("ok")
    server.start()
    try:
        session = requests.Session()
        session.trust_env = False  # else REQUESTS_CA_BUNDLE from the environment replaces verify
        session.verify = str(cert)
        url = f"https://localhost:{server.port}{PATH}"
        if delivered:
            assert deliver_alert(url, _unhappy(), settings, session=session) == 200
            assert server.log[0][0].headers["Host"] == f"localhost:{server.port}"
        else:
            with pytest.raises(AlertRetryable, match="SSLError"):
                deliver_alert(url, _unhappy(), settings, session=session)
            assert server.log == []
    finally:
        server.stop()


def _succeeded(worker: Any, task: str) -> bool:
    """Say whether the worker logged that a run of task ended successfully (Celery's "succeeded" line)."""
    return any(f"{task}[" in line and "succeeded" in line for line in worker.lines)


@pytest.mark.e2e
def test_an_endpoint_failing_once_gets_the_alert_from_the_worker_exactly_once(
        post_event, store, settings, smtp, live_server, start_worker, httpserver):
    calls: list[Request] = []
    lock = threading.Lock()

    def flaky(request: Request) -> Response:
        with lock:
            calls.append(request)
            return Response("oops", status=500) if len(calls) == 1 else Response("", status=204)

    httpserver.expect_request(PATH, method="POST").respond_with_handler(flaky)
    worker = start_worker()
    path = _sent_survey(post_event, store, settings, smtp)
    # The answer goes through the real web app, which enqueues through the real broker.
    answered = requests.post(live_server + path, data={"rating": "1", "comment": "Never again"}, timeout=10)
    assert answered.status_code == 200
    wait_until(lambda: len(calls) >= 2, timeout=30, what="the alert to be retried")
    # Nothing more may arrive: once the retried task has succeeded, no attempt of this alert is left.
    wait_until(lambda: _succeeded(worker, "tracker.deliver_alert"), what="the retried delivery to succeed")
    assert len(calls) == 2
    assert calls[0].headers["webhook-id"] == calls[1].headers["webhook-id"]
    assert json.loads(calls[1].get_data())["data"]["comment"] == "Never again"
    output = worker.output()
    assert "retry" in output.lower()
    for secret in (EMAIL, "Kari", "Never again"):
        assert secret not in output


@pytest.mark.e2e
def test_the_worker_does_not_retry_an_alert_the_endpoint_refused(settings, start_worker, httpserver):
    from workers.celery_app import create_celery

    httpserver.expect_request(PATH, method="POST").respond_with_data("gone", status=410)
    worker = start_worker()
    create_celery(settings).send_task("tracker.deliver_alert", args=[httpserver.url_for(PATH), json.dumps(_unhappy())])
    wait_until(lambda: "alert not delivered" in worker.output(), timeout=30, what="the refusal to be logged")
    # A retry would be scheduled before the task ends; the task ending successfully proves there is none.
    wait_until(lambda: _succeeded(worker, "tracker.deliver_alert"), what="the delivery task to end")
    assert len(httpserver.log) == 1
    assert "410" in worker.output() and "retry" not in worker.output().lower()


def test_refusals_name_the_host_but_never_the_url_path(env):
    # Slack webhook paths are secrets; errors (and so logs) carry the host alone.
    closed = load_settings({**env, "TRACKER_ALERT_ALLOW_PRIVATE": "0"})
    with pytest.raises(AlertRefused) as refused:
        deliver_alert("http://10.0.0.7/services/T000/B000/SECRETPATH", _unhappy(), closed)
    assert "SECRETPATH" not in str(refused.value) and "10.0.0.7" in str(refused.value)
    assert ipaddress.ip_address("10.0.0.7").is_private


def _held_unkicked(post_event: Any, store: Any, env: dict[str, str], settings: Any, smtp: Any,
                   httpserver: HTTPServer) -> str:
    """An unhappy answer whose kick the broker did not take (it was down): the alert held; return the survey id. The
    alert URL answers 204."""
    httpserver.expect_request(PATH, method="POST").respond_with_data("", status=204)
    away = load_settings({**env, "TRACKER_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0"})
    web = create_app(settings, store, enqueue=web_enqueue(create_celery(away))).test_client()
    path = _sent_survey(post_event, store, settings, smtp)
    assert web.post(path, data={"rating": "1", "comment": "Nobody called back"}).status_code == 200
    sid = path.split("/")[2].split("-")[0]
    assert store.alerts_held_before(_now_ms() + 1, 10) == [(sid, 1)]
    return sid


def test_an_alert_whose_kick_the_broker_did_not_take_is_sent_once_by_beats_resend(
        post_event, store, env, settings, smtp, httpserver, start_worker):
    """The broker down as the customer answers: the answer is recorded and its alert held; a worker running beat's
    resend delivers it once and releases it, so the resend after finds nothing to send."""
    sid = _held_unkicked(post_event, store, env, settings, smtp, httpserver)

    worker = start_worker()
    celery = create_celery(settings)
    celery.send_task("tracker.resend_held_alerts", kwargs={"older_than_ms": 0})
    wait_until(lambda: httpserver.log and not store.alerts_held_before(_now_ms() + 1, 10), what="the alert sent")
    ((request, _),) = httpserver.log
    data = json.loads(request.get_data())["data"]
    assert (data["survey"], data["rating"], data["comment"]) == (sid, 1, "Nobody called back")
    celery.send_task("tracker.resend_held_alerts", kwargs={"older_than_ms": 0})
    wait_until(lambda: worker.output().count("Task tracker.resend_held_alerts") >= 4, what="the second resend run")
    assert len(httpserver.log) == 1


def test_an_alert_kicked_twice_is_queued_once(post_event, store, env, settings, smtp, httpserver, start_worker):
    """Its first kick waited behind a backlog longer than HELD_FOR_MS, and beat's resend kicked it again: the task that
    runs second finds it released (queued already) and leaves it alone. The worker runs one task at a time, in order,
    so once a task sent after both has run, every delivery either queued has run too."""
    sid = _held_unkicked(post_event, store, env, settings, smtp, httpserver)
    celery = create_celery(settings)
    celery.send_task("tracker.resend_held_alerts", kwargs={"older_than_ms": 0})  # beat's kick, queued behind:
    celery.send_task("tracker.send_alert", args=[sid, 1])  # the first kick, late
    worker = start_worker()
    ran = re.compile(r"Task tracker\.(send_alert|resend_held_alerts)\[[^]]+\] succeeded")
    wait_until(lambda: len(ran.findall(worker.output())) == 3, what="beat's resend and both kicks run")
    celery.send_task("tracker.resend_held_alerts", kwargs={"older_than_ms": 0})  # after every delivery queued
    wait_until(lambda: len(ran.findall(worker.output())) == 4, what="the last task run")
    assert len(httpserver.log) == 1, worker.output()
    assert worker.output().count("alert left alone") == 1
    assert store.alerts_held_before(_now_ms() + 1, 10) == []


def test_a_held_alert_is_queued_by_the_one_task_that_claims_it_and_never_once_released(store, settings):
    """Tokens are tasks (a task's retry keeps its token): another task's claim, or a release, leaves it alone."""
    from tracker.alerts.held import queue_held

    queued: list[str] = []
    _hold(store, "s-1", 1, _now_ms())  # held with no answer behind it: queued as nothing (alerts_for), released
    assert store.take_alert("s-1", 1, "task-a", HELD_FOR_MS)
    assert store.take_alert("s-1", 1, "task-a", HELD_FOR_MS)  # its retry
    assert not store.take_alert("s-1", 1, "task-b", HELD_FOR_MS)
    assert queue_held(store, settings, "s-1", 1, _now_ms(), lambda url, body: queued.append(url), "task-b") is None
    assert queue_held(store, settings, "s-1", 1, _now_ms(), lambda url, body: queued.append(url), "task-a") == 0
    assert store.alerts_held_before(10 ** 13, 10) == []  # released
    assert not store.take_alert("s-1", 1, "task-a", HELD_FOR_MS)
    assert queue_held(store, settings, "s-1", 1, _now_ms(), lambda url, body: queued.append(url), "task-c") is None
    assert queued == []


def _hold(store: Any, sid: str, rating: int, at_ms: int) -> None:
    """Hold an alert as record_answer.lua does, at a time of the test's choosing."""
    from tracker.store import keys

    store.redis.zadd(keys.alerts_held(keys.bucket_of(sid)), {f"{sid}|{rating}": at_ms})


def test_a_held_alert_is_sent_again_only_once_it_waited_and_then_waits_again(store):
    sent: list[tuple[str, int]] = []
    _hold(store, "s-1", 2, 1_000_000)
    _hold(store, "s-2", 1, 1_000_000 + HELD_FOR_MS)
    assert resend_held(store, 1_000_000 + HELD_FOR_MS - 1, lambda *alert: sent.append(alert)) == 0
    assert resend_held(store, 1_000_000 + HELD_FOR_MS, lambda *alert: sent.append(alert)) == 1
    assert sent == [("s-1", 2)]
    assert resend_held(store, 1_000_000 + HELD_FOR_MS + 1, lambda *alert: sent.append(alert)) == 0  # renewed
    store.release_alert("s-1", 2)
    assert resend_held(store, 1_000_000 + 3 * HELD_FOR_MS, lambda *alert: sent.append(alert)) == 1
    assert sent == [("s-1", 2), ("s-2", 1)]


def test_an_unhappy_answer_is_held_by_the_script_that_records_it_once_and_only_where_the_caller_alerts(
        post_event, store, settings, smtp):
    """A web process killed between recording the answer and kicking its alert leaves the alert held: both are
    written by one script. A repeat, a satisfied rating, a caller that does not alert (imports) hold nothing."""
    from tracker.answers.record import record_answer

    path = _sent_survey(post_event, store, settings, smtp)
    sid = path.split("/")[2].split("-")[0]
    survey = store.survey(sid)
    assert record_answer(store, settings, survey, 2, "Slow", _now_ms()) == 2  # an import: no alert
    assert store.alerts_held_before(_now_ms() + 1, 10) == []
    assert record_answer(store, settings, survey, 1, "Slower", _now_ms(), alerting=True) == 2
    assert store.alerts_held_before(_now_ms() + 1, 10) == [(sid, 1)]
    store.release_alert(sid, 1)
    assert record_answer(store, settings, survey, 1, "Slower still", _now_ms(), alerting=True) == 1
    assert record_answer(store, settings, survey, 5, "", _now_ms(), alerting=True) == 2
    assert store.alerts_held_before(_now_ms() + 1, 10) == []

    sent: list[tuple[str, int]] = []
    assert record_answer(store, settings, survey, 1, "", _now_ms(), alerting=True) == 2
    assert resend_held(store, _now_ms() + HELD_FOR_MS, lambda *alert: sent.append(alert)) == 1
    assert sent == [(sid, 1)]


def test_alerts_held_in_the_single_set_of_the_version_before_are_sent_and_released(store):
    from tracker.store import keys

    store.redis.zadd(keys.ALERTS_HELD_BEFORE, {"s-old|1": 1_000_000})
    _hold(store, "s-new", 2, 1_000_001)
    sent: list[tuple[str, int]] = []
    assert resend_held(store, 1_000_001 + HELD_FOR_MS, lambda *alert: sent.append(alert)) == 2
    assert sent == [("s-old", 1), ("s-new", 2)]  # oldest first, across the sets
    store.release_alert("s-old", 1)
    store.release_alert("s-new", 2)
    assert store.alerts_held_before(10 ** 13, 10) == []


def test_an_alert_whose_receiver_stays_down_is_tried_16_times_then_given_up_in_one_line(settings, caplog):
    """Eagerly, each retry runs at once: 16 attempts against a closed port, then one error line, no stack trace."""
    import logging

    from tracker.alerts.delivery import ALERT_RETRY

    app = create_celery(settings)
    caplog.set_level(logging.INFO)
    app.tasks["tracker.deliver_alert"].apply(args=[f"http://127.0.0.1:{free_port()}{PATH}", json.dumps(_unhappy())])
    given_up = [record for record in caplog.records if "given up" in record.getMessage()]
    assert len(given_up) == 1 and given_up[0].levelname == "ERROR" and given_up[0].exc_info is None
    assert f"after {ALERT_RETRY.attempts} attempts" in given_up[0].getMessage()
    assert "cannot reach the alert host '127.0.0.1'" in given_up[0].getMessage()
    delays = [ALERT_RETRY.delay_s(attempt) for attempt in range(1, ALERT_RETRY.attempts)]
    assert 1_800 < sum(delays) < 7_200 and max(delays) <= 600  # about an hour in all, under the visibility timeout
