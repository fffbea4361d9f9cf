"""Operations: /metrics in Prometheus text, JSON logs without personal data, and the `tracker top` listing."""

from __future__ import annotations

import io
import json
import logging
import re
import time
from typing import Any

import pytest
from redis.cluster import RedisCluster

from tests.support import drain, inject_log_entry, send_all, solved_event, survey_link, tracker
from tracker.cli.dev import free_port
from tracker.config import load_settings
from tracker.logs import JsonFormatter, configure_logging
from tracker.privacy.erase import erase_customer
from tracker.store import Store
from tracker.web.app import create_app

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:\\.|[^"\\])*",?)*)\})? '
                    r'(-?[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?)$')
COMMENT = re.compile(r"^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:\\.|[^"\\])*)"')


def scrape(client: Any) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """GET /metrics, check every line is Prometheus text, and return the samples by name and labels."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = response.get_data(as_text=True)
    assert text.endswith("\n")
    samples = {}
    for line in text.splitlines():
        if line.startswith("#"):
            assert COMMENT.match(line), line
            continue
        match = SAMPLE.match(line)
        assert match, line
        labels = frozenset(LABEL.findall(match.group(3) or ""))
        samples[(match.group(1), labels)] = float(match.group(4))
    return samples


def value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def _iso(offset: float = 0) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + offset))


def test_deliveries_are_counted_by_source_and_outcome(post_event, client):
    event = solved_event(at=_iso())
    headers = {"webhook-id": "msg_metrics_1"}
    assert post_event("standard", event, headers=headers).status_code == 202
    assert post_event("standard", event, headers=headers).status_code == 200  # duplicate
    assert post_event("standard", {"type": "invoice.paid", "id": "e", "occurred_at": _iso()}).status_code == 200
    assert post_event("standard", event, sign=False).status_code == 401
    assert post_event("standard", b"{not json").status_code == 400
    assert client.post("/webhooks/no-such-tool", json={}).status_code == 404
    assert post_event("standard", event, content_type="text/plain").status_code == 415
    assert post_event("standard", b"x" * (2 << 20)).status_code == 413
    samples = scrape(client)
    counted = {labels: v for (name, labels), v in samples.items() if name == "tracker_events_received_total"}
    assert counted == {
        frozenset({("source", "standard"), ("status", "accepted")}): 1,
        frozenset({("source", "standard"), ("status", "duplicate")}): 1,
        frozenset({("source", "standard"), ("status", "ignored")}): 1,
        frozenset({("source", "standard"), ("status", "unauthorized")}): 1,
        frozenset({("source", "standard"), ("status", "invalid")}): 1,
        frozenset({("source", "unknown"), ("status", "unknown_source")}): 1,
        frozenset({("source", "standard"), ("status", "unsupported_media_type")}): 1,
        frozenset({("source", "standard"), ("status", "too_large")}): 1,
    }


def test_a_repeat_answered_before_its_body_is_read_is_counted_as_a_duplicate(post_event, client):
    headers = {"webhook-id": "msg_metrics_early"}
    assert post_event("standard", solved_event(at=_iso()), headers=headers).status_code == 202
    assert post_event("standard", b"{not json", headers=headers).status_code == 200  # known id: duplicate
    counted = {labels: v for (name, labels), v in scrape(client).items() if name == "tracker_events_received_total"}
    assert counted == {frozenset({("source", "standard"), ("status", "accepted")}): 1,
                       frozenset({("source", "standard"), ("status", "duplicate")}): 1}


def test_the_log_the_surveys_and_the_answers_move_their_gauges_and_counters(post_event, store, settings, smtp,
                                                                          client):
    assert post_event("standard", solved_event(ticket="M-1", at=_iso(-60))).status_code == 202
    assert post_event("standard", solved_event(ticket="M-2", at=_iso(-30))).status_code == 202
    before = scrape(client)
    assert value(before, "tracker_stream_length") == 2
    assert value(before, "tracker_surveys_sent_total") == 0
    drain(store, settings)
    due = scrape(client)
    assert value(due, "tracker_stream_lag") == 0 and value(due, "tracker_stream_pending") == 0
    assert value(due, "tracker_customers") == 1
    assert value(due, "tracker_sweep_lag_seconds") >= 29  # due since the solve (no delay in tests)
    send_all(store, settings)
    (mail,) = smtp.wait_for(1)
    client.post(survey_link(mail, 2), data={"rating": "2"})
    after = scrape(client)
    assert value(after, "tracker_surveys_sent_total") == 1
    assert value(after, "tracker_surveys_total", status="sent", reason="") == 1
    assert value(after, "tracker_surveys_total", status="skipped", reason="throttled") == 1
    assert value(after, "tracker_answers_total") == 1
    assert value(after, "tracker_sweep_lag_seconds") == 0
    assert value(after, "tracker_dead_letters") == 0
    assert post_event("standard", solved_event(ticket="M-3", at=_iso())).status_code == 202
    inject_log_entry(store, json.dumps({"type": "ticket.solved", "source": "standard", "id": "bad", "at": "yesterday"}))
    waiting = scrape(client)
    assert value(waiting, "tracker_stream_length") == 4 and value(waiting, "tracker_stream_lag") == 2
    drain(store, settings)
    assert value(scrape(client), "tracker_dead_letters") == 1
    # Erasing the customer must not make the totals go backwards (Prometheus would read a reset).
    erase_customer(store, settings, "kari@example.no")
    erased = scrape(client)
    assert value(erased, "tracker_surveys_sent_total") == 1 and value(erased, "tracker_answers_total") == 1
    assert value(erased, "tracker_customers") == 0


def _per_node(samples: dict, name: str) -> dict[str, float]:
    return {dict(labels)["node"]: sampled for (named, labels), sampled in samples.items() if named == name}


def _set_on_each_master(store: Store, name: str, setting: int) -> None:
    client = store.redis
    for node in client.get_primaries() if isinstance(client, RedisCluster) else [None]:
        (client if node is None else client.get_redis_connection(node)).config_set(name, setting)


def test_the_redis_memory_used_and_its_maxmemory_are_scraped_per_master(client, store):
    nodes = {limit.node for limit in store.memory_limits()}  # "" alone on a standalone Redis, else each master
    samples = scrape(client)
    used = _per_node(samples, "tracker_redis_used_memory_bytes")
    assert set(used) == nodes and all(bytes_used > 0 for bytes_used in used.values())
    assert _per_node(samples, "tracker_redis_maxmemory_bytes") == dict.fromkeys(nodes, 0)  # the tests': no limit
    _set_on_each_master(store, "maxmemory", 10 * 1024 ** 3)
    try:
        assert _per_node(scrape(client), "tracker_redis_maxmemory_bytes") == dict.fromkeys(nodes, 10 * 1024 ** 3)
    finally:
        _set_on_each_master(store, "maxmemory", 0)


def test_the_celery_queue_length_is_read_from_the_redis_broker(settings, store):
    from workers.celery_app import create_celery, queue_length, web_enqueue

    celery = create_celery(settings)
    client = create_app(settings, store, enqueue=web_enqueue(celery), queue_length=queue_length(celery)).test_client()
    assert value(scrape(client), "tracker_celery_queue_length") == 0
    celery.send_task("tracker.drain_events")
    celery.send_task("tracker.drain_events")
    assert value(scrape(client), "tracker_celery_queue_length") == 2


def test_a_broker_that_is_down_leaves_the_queue_gauge_out_and_the_rest_is_scraped(settings, env, store):
    from workers.celery_app import create_celery, queue_length

    celery = create_celery(load_settings({**env, "TRACKER_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0"}))
    client = create_app(settings, store, enqueue=lambda task, *args: None,
                        queue_length=queue_length(celery)).test_client()
    samples = scrape(client)
    assert value(samples, "tracker_celery_queue_length") is None
    assert value(samples, "tracker_stream_length") == 0


def test_metrics_answer_503_not_500_while_redis_is_down(env):
    down = f"redis://127.0.0.1:{free_port()}/0"
    app = create_app(load_settings({**env, "TRACKER_REDIS_URL": down, "TRACKER_BROKER_URL": down}),
                     Store.from_url(down),
                     enqueue=lambda task, *args: None)
    response = app.test_client().get("/metrics")
    assert response.status_code == 503 and response.json["code"] == 503


def test_json_logs_carry_time_level_logger_message_and_our_extra_fields():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tracker.test_logs")
    logger.addHandler(handler)
    try:
        logger.warning("survey mail deferred after %d tries", 2, extra={"survey": "abc", "attempt": 2})
        logging.getLogger("celery.test_logs").addHandler(handler)
        logging.getLogger("celery.test_logs").warning("task received", extra={"data": {"args": ["x@y.no"]}})
    finally:
        logger.removeHandler(handler)
        logging.getLogger("celery.test_logs").removeHandler(handler)
    ours, theirs = (json.loads(line) for line in stream.getvalue().splitlines())
    assert ours["level"] == "WARNING" and ours["logger"] == "tracker.test_logs"
    assert ours["message"] == "survey mail deferred after 2 tries"
    assert (ours["survey"], ours["attempt"]) == ("abc", 2)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", ours["time"])
    # Other libraries' extras are not ours to vouch for: Celery's carries task arguments.
    assert "data" not in theirs and "x@y.no" not in stream.getvalue()


def test_logs_are_json_lines_when_stderr_is_not_a_terminal_and_text_when_it_is():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    root = logging.getLogger()
    saved = root.handlers[:]
    try:
        for stream, is_json in ((io.StringIO(), True), (Terminal(), False)):
            root.handlers = []
            configure_logging("INFO", stream)
            logging.getLogger("tracker.test_logs").info("hello")
            line = stream.getvalue().strip()
            assert line.startswith("{") is is_json, line
            assert line.endswith("hello") is not is_json
    finally:
        root.handlers = saved


def test_a_full_loop_logs_no_email_name_or_comment(post_event, store, settings, env, smtp, client, caplog,
                                                   httpserver):
    from tracker.alerts.delivery import AlertRetryable, deliver_alert
    from tracker.alerts.payload import alerts_for

    caplog.set_level(logging.DEBUG, logger="tracker")
    caplog.set_level(logging.DEBUG, logger="webhooks")
    caplog.set_level(logging.DEBUG, logger="workers")
    caplog.set_level(logging.INFO)
    email, name, comment = "Private.Person@Example.no", "Priva Tperson", "My secret complaint"
    event = solved_event(ticket="L-1", email_address=email, at=_iso(-30))
    event["customer"]["name"] = name
    assert post_event("standard", event).status_code == 202
    assert post_event("standard", solved_event(ticket="L-2", email_address=email, at=_iso())).status_code == 202
    drain(store, settings)
    send_all(store, settings)  # one sent, one throttled
    (mail,) = smtp.wait_for(1)
    sid = survey_link(mail, 1).split("/")[2].split("-")[0]
    client.post(survey_link(mail, 1), data={"rating": "1", "comment": comment})
    httpserver.expect_request("/hook").respond_with_data("", status=500)
    alerting = load_settings({**env, "TRACKER_ALERT_URLS": httpserver.url_for("/hook"),
                              "TRACKER_ALERT_ALLOW_PRIVATE": "1"})
    ((url, payload),) = alerts_for(store, alerting, sid, 1, int(time.time() * 1000))
    with pytest.raises(AlertRetryable, match="500"):
        deliver_alert(url, json.loads(payload), alerting)
    erase_customer(store, settings, email)
    # aiosmtpd's "mail.log" is the test's SMTP server talking, not the product.
    records = [r for r in caplog.records if not r.name.startswith("mail.")]
    assert records, "the loop logged nothing, so this test would prove nothing"
    text = logging.Formatter("%(name)s %(message)s")
    written = "\n".join(f(r) for r in records for f in (JsonFormatter().format, text.format)).lower()
    assert "survey sent" in written and "customer erased" in written
    for secret in (email.lower(), name.lower(), "tperson", comment.lower()):
        assert secret not in written


def test_top_lists_customers_by_score_and_at_risk_ones_alone(post_event, store, settings, smtp, client, env):
    for n, address in enumerate(("low@example.no", "high@example.no")):
        event = solved_event(ticket=f"TOP-{n}", email_address=address, at=_iso(-10))
        event["customer"]["id"] = f"c-top-{n}"
        assert post_event("standard", event).status_code == 202
    drain(store, settings)
    send_all(store, settings)
    for mail in smtp.wait_for(2):
        rating = 1 if mail["To"].addresses[0].addr_spec == "low@example.no" else 5
        client.post(survey_link(mail, rating), data={"rating": str(rating)})
    listed = tracker(env, "top")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split()[:3] == ["customer", "name", "score"]
    assert lines[1].startswith("low@example.no") and lines[1].endswith("AT RISK")
    assert lines[2].startswith("high@example.no") and " 100 " in lines[2]
    at_risk = tracker(env, "top", "--at-risk", "--limit", "5")
    assert [line.split()[0] for line in at_risk.stdout.splitlines()[1:]] == ["low@example.no"]
    assert tracker(env, "top", "--limit", "0").returncode == 1
