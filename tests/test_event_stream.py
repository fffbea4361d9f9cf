"""The event stream out (issue 11 item 2): notices dispatched to TRACKER_EVENT_URLS, signed, in order, retried."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook
from werkzeug import Request, Response

from tests.support import make_env
from tracker.config import Settings, load_settings
from tracker.notice_types import TICKET_AT_RISK
from tracker.notify import dispatch as dispatching
from tracker.notify.dispatch import GIVE_UP_MS, DispatchReport, redeliver, targets_for
from tracker.notify.events import emit
from tracker.notify.urls import event_secret, url_target_name, url_targets
from tracker.store import Store, keys

T0 = 1_790_000_000_000  # a fixed dispatch time; every run passes its own now_ms, nothing sleeps
CUSTOMER = "kari@example.no"


def settings_for(redis_url: str, *urls: str, **extra: str) -> Settings:
    extra = {"TRACKER_EVENT_URLS": ",".join(urls), "TRACKER_ALERT_ALLOW_PRIVATE": "1", **extra}
    return load_settings(make_env(redis_url, 2525, **extra))


def dispatch(store: Store, settings: Settings, consumer: str, now_ms: int) -> DispatchReport:
    """Run the dispatcher over the event URL targets alone (write-back and cases have tests of their own)."""
    return dispatching.dispatch(store, settings, consumer, now_ms, targets=url_targets(settings))


def answered(store: Store, n: int, customer: str = CUSTOMER, at_ms: int = T0) -> str:
    event_id = f"survey.answered:{customer}:{n}"
    emit(store, "survey.answered", customer, {"survey": {"id": f"s{n}"}, "customer": {"email": customer},
                                              "answer": {"rating": n % 5 + 1}}, event_id, at_ms)
    return event_id


class Receiver:
    """What an event URL received: each request's headers and body, answered from a script of responses."""

    def __init__(self, answers: list[Response] | None = None):
        self.answers = list(answers or [])
        self.got: list[tuple[dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        self.arrived = threading.Event()

    def __call__(self, request: Request) -> Response:
        with self.lock:
            self.got.append(({k.lower(): v for k, v in request.headers.items()}, request.get_data()))
            self.arrived.set()
            return self.answers.pop(0) if self.answers else Response("ok", 200)

    def ids(self) -> list[str]:
        return [headers["webhook-id"] for headers, _ in self.got]

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.got]


@pytest.fixture
def receiver(httpserver: Any) -> Callable[..., tuple[Receiver, str]]:
    def make(*answers: Response, path: str = "/hook") -> tuple[Receiver, str]:
        got = Receiver(list(answers))
        httpserver.expect_request(path, method="POST").respond_with_handler(got)
        return got, httpserver.url_for(path)
    return make


def test_a_notice_arrives_signed_so_that_the_official_library_verifies_it(redis_url, receiver):
    got, url = receiver()
    settings = settings_for(redis_url, url)
    store = Store.from_url(redis_url)
    notice_id = answered(store, 1)
    report = dispatch(store, settings, "test", T0)
    assert report.delivered == 1
    (headers, body), = got.got
    payload = Webhook(event_secret(settings)).verify(body, headers)  # raises unless the signature holds
    assert payload["type"] == "survey.answered" and payload["data"]["customer"]["email"] == CUSTOMER
    assert headers["webhook-id"] == notice_id
    assert dispatch(store, settings, "test", T0 + 1000).delivered == 0  # delivered once


def test_a_receiver_failing_twice_gets_the_same_webhook_id_three_times(redis_url, receiver):
    got, url = receiver(Response("down", 503), Response("down", 503))
    settings = settings_for(redis_url, url)
    store = Store.from_url(redis_url)
    notice_id = answered(store, 1)
    assert dispatch(store, settings, "test", T0).retry == 1
    assert dispatch(store, settings, "test", T0 + 60_000).retry == 1
    assert dispatch(store, settings, "test", T0 + 600_000).delivered == 1
    assert got.ids() == [notice_id] * 3
    rows = store.list_deliveries(10, lambda r: True)
    assert [(r["status"], r["attempt"], r["code"]) for r in rows] == [
        ("delivered", 3, 200), ("retry", 2, 503), ("retry", 1, 503)]
    assert {r["notice"] for r in rows} == {notice_id}


def test_a_retry_waits_its_backoff_and_blocks_the_customers_later_notices(redis_url, receiver):
    got, url = receiver(Response("down", 503))
    settings = settings_for(redis_url, url)
    store = Store.from_url(redis_url)
    first, second = answered(store, 1), answered(store, 2)
    dispatch(store, settings, "test", T0)
    retry_at = store.list_deliveries(1, lambda r: True)[0]["next_at"]
    assert T0 < retry_at <= T0 + 5_000  # the first backoff: full jitter under 5 s
    assert dispatch(store, settings, "test", retry_at - 1).delivered == 0  # not due: nothing, not even the second
    assert got.ids() == [first]
    dispatch(store, settings, "test", retry_at)
    assert got.ids() == [first, first, second]


def test_429_with_retry_after_waits_that_long(redis_url, receiver):
    got, url = receiver(Response("slow down", 429, headers={"Retry-After": "120"}),
                        Response("slow down", 429, headers={"Retry-After": format_datetime(
                            datetime.fromtimestamp((T0 + 420_000) / 1000, UTC), usegmt=True)}))
    settings = settings_for(redis_url, url)
    store = Store.from_url(redis_url)
    answered(store, 1)
    dispatch(store, settings, "test", T0)
    assert store.list_deliveries(1, lambda r: True)[0]["next_at"] == T0 + 120_000
    dispatch(store, settings, "test", T0 + 119_000)
    assert len(got.got) == 1
    dispatch(store, settings, "test", T0 + 120_000)  # answered with an HTTP date 5 minutes on
    assert store.list_deliveries(1, lambda r: True)[0]["next_at"] == T0 + 420_000
    dispatch(store, settings, "test", T0 + 420_000)
    assert [r["status"] for r in store.list_deliveries(5, lambda r: True)] == ["delivered", "retry", "retry"]


def test_401_is_refused_once_and_the_target_moves_on(redis_url, receiver):
    got, url = receiver(Response("who are you", 401))
    settings = settings_for(redis_url, url)
    store = Store.from_url(redis_url)
    first, second = answered(store, 1), answered(store, 2)
    dispatch(store, settings, "test", T0)
    for later in range(1, 5):
        dispatch(store, settings, "test", T0 + later * 3_600_000)
    assert got.ids() == [first, second]  # no retry storm: one attempt, then the next notice
    rows = store.list_deliveries(10, lambda r: True)
    assert [(r["status"], r["code"]) for r in rows] == [("delivered", 200), ("refused", 401)]


def test_a_notice_retried_for_a_day_is_recorded_failed_and_the_next_one_goes(redis_url, receiver):
    got, url = receiver(*[Response("down", 503)] * 3)
    settings = settings_for(redis_url, url)
    store = Store.from_url(redis_url)
    first, second = answered(store, 1), answered(store, 2)
    for at in (T0, T0 + 3_600_000, T0 + GIVE_UP_MS):
        dispatch(store, settings, "test", at)
    assert [r["status"] for r in store.list_deliveries(10, lambda r: True)] == ["delivered", "failed", "retry",
                                                                                "retry"]
    assert got.ids() == [first, first, first, second]


def test_each_url_gets_only_the_public_types_it_asked_for(redis_url, receiver):
    every, every_url = receiver(path="/every")
    some, some_url = receiver(path="/some")
    settings = settings_for(redis_url, every_url, f"{some_url}|customer.at_risk")
    store = Store.from_url(redis_url)
    answered(store, 1)
    emit(store, "customer.at_risk", CUSTOMER, {"customer": {"email": CUSTOMER}}, "customer.at_risk:1", T0)
    emit(store, TICKET_AT_RISK, CUSTOMER, {"ticket": {"id": "1"}}, "ticket.at_risk:1", T0)
    dispatch(store, settings, "test", T0)
    assert [b["type"] for b in every.bodies()] == ["survey.answered", "customer.at_risk"]
    assert [b["type"] for b in some.bodies()] == ["customer.at_risk"]
    assert {r["target"] for r in store.list_deliveries(10, lambda r: True)} == {
        url_target_name(every_url), url_target_name(some_url)}


def test_an_event_url_on_a_private_address_is_refused_unless_allowed(redis_url, receiver):
    got, url = receiver()
    settings = settings_for(redis_url, url, TRACKER_ALERT_ALLOW_PRIVATE="0")
    store = Store.from_url(redis_url)
    answered(store, 1)
    assert dispatch(store, settings, "test", T0).refused == 1
    assert got.got == []
    assert "TRACKER_ALERT_ALLOW_PRIVATE" in store.list_deliveries(1, lambda r: True)[0]["detail"]


def test_two_dispatchers_at_once_keep_each_customers_order(redis_url, receiver):
    got, url = receiver()
    settings = settings_for(redis_url, url)
    store = Store.from_url(redis_url)
    customers = [f"c{i}@example.com" for i in range(12)]
    sent = {c: [answered(store, n, c) for n in range(6)] for c in customers}
    runs = [threading.Thread(target=dispatch, args=(Store.from_url(redis_url), settings, f"d{i}", T0))
            for i in range(2)]
    for run in runs:
        run.start()
    for run in runs:
        run.join()
    received: dict[str, list[str]] = {}
    for body, notice_id in zip(got.bodies(), got.ids(), strict=True):
        received.setdefault(body["data"]["customer"]["email"], []).append(notice_id)
    assert received == sent  # each once, in order per customer


def test_notices_every_target_passed_leave_after_the_log_retention(redis_url, receiver):
    got, url = receiver()
    settings = settings_for(redis_url, url, TRACKER_LOG_RETENTION_DAYS="1")
    store = Store.from_url(redis_url)
    answered(store, 1)
    bucket = keys.bucket_of(CUSTOMER)
    dispatch(store, settings, "test", T0)
    assert len(got.got) == 1 and store.redis.xlen(keys.notices(bucket)) == 1  # delivered, younger than a day
    dispatch(store, settings, "test", int(time.time() * 1000) + 2 * 86_400_000)
    assert store.redis.xlen(keys.notices(bucket)) == 0


def test_a_redelivery_sends_the_same_webhook_id_again_and_is_recorded(redis_url, receiver):
    got, url = receiver(Response("gone", 410))
    settings = settings_for(redis_url, url)
    store = Store.from_url(redis_url)
    notice_id = answered(store, 1)
    dispatch(store, settings, "test", T0)
    refused = store.list_deliveries(1, lambda r: True)[0]
    again = redeliver(store, settings, refused["id"], T0 + 5000)
    assert again.status == "delivered" and got.ids() == [notice_id, notice_id]
    newest = store.list_deliveries(1, lambda r: True)[0]
    assert newest["id"] == again.delivery_id and newest["redelivery_of"] == refused["id"]
    assert [t.name for t in targets_for(settings)][:1] == [url_target_name(url)]


def test_beat_and_a_worker_deliver_a_notice_within_seconds(env, start_worker, receiver):
    got, url = receiver()
    store = Store.from_url(env["TRACKER_REDIS_URL"])
    emit(store, "survey.sent", CUSTOMER, {"survey": {"id": "s1"}, "customer": {"email": CUSTOMER}}, "survey.sent:s1",
         T0)
    start_worker(beat=True, TRACKER_EVENT_URLS=url, TRACKER_ALERT_ALLOW_PRIVATE="1")
    assert got.arrived.wait(30), "no notice arrived: beat's dispatch-notices every 2 s should have sent it"
    assert got.ids() == ["survey.sent:s1"]


def test_the_deliveries_api_lists_attempts_newest_first_with_filters(redis_url, receiver):
    from tracker.web.app import create_app

    _got, url = receiver(Response("down", 503))
    settings = settings_for(redis_url, url)
    store = Store.from_url(redis_url)
    first = answered(store, 1)
    other = answered(store, 1, customer="ola@example.com")
    dispatch(store, settings, "test", T0)
    dispatch(store, settings, "test", T0 + 60_000)
    client = create_app(settings, store, enqueue=lambda *args: None).test_client()
    key = {"Authorization": f"Bearer {store.create_key('ops', ('read',))}"}
    assert client.get("/api/v1/deliveries").status_code == 401
    rows = client.get("/api/v1/deliveries", headers=key).get_json()["deliveries"]
    assert len(rows) == 3 and rows[0]["at"] > rows[-1]["at"]
    assert set(rows[0]) == {"id", "notice", "type", "customer", "target", "attempt", "status", "code", "detail", "at",
                            "next_at", "bucket", "entry", "redelivery_of"}
    retried = client.get("/api/v1/deliveries?status=retry", headers=key).get_json()["deliveries"]
    assert [(r["notice"], r["code"], r["next_at"] is not None) for r in retried] == [(first, 503, True)]
    mine = client.get("/api/v1/deliveries?customer=OLA@example.com&limit=1", headers=key).get_json()["deliveries"]
    assert [(r["notice"], r["status"]) for r in mine] == [(other, "delivered")]
    target = url_target_name(url)
    assert len(client.get(f"/api/v1/deliveries?target={target}&type=survey.answered",
                          headers=key).get_json()["deliveries"]) == 3
    for bad in ("limit=0", "limit=x", "status=lost", "type=nope", "customer=not-an-email", "target=url:zz"):
        answer = client.get(f"/api/v1/deliveries?{bad}", headers=key)
        assert answer.status_code == 422, bad
        assert bad.split("=")[0] in answer.get_json()["errors"]
    assert "/api/v1/deliveries" in client.get("/api/openapi.json").get_json()["paths"]


def test_the_cli_lists_deliveries_and_redelivers_one(redis_url, receiver, monkeypatch, capsys):
    from tracker.cli.commands import main

    got, url = receiver(Response("gone", 410), Response("down", 500))
    settings = settings_for(redis_url, url)
    for name, value in make_env(redis_url, 2525, TRACKER_EVENT_URLS=url, TRACKER_ALERT_ALLOW_PRIVATE="1").items():
        monkeypatch.setenv(name, value)
    store = Store.from_url(redis_url)
    notice_id = answered(store, 1)
    dispatch(store, settings, "test", T0)
    capsys.readouterr()

    assert main(["event-secret"]) == 0
    assert capsys.readouterr().out.strip() == event_secret(settings)
    assert main(["deliveries", "--status", "refused"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    refused_id, _at, status, _attempt, code, *_ = line.split("\t")
    assert (status, code) == ("refused", "410") and notice_id in line
    assert main(["deliveries", "--status", "delivered"]) == 0
    assert capsys.readouterr().out.strip() == "No delivery attempts recorded that match."
    assert main(["deliveries", "--limit", "0"]) == 2
    assert "--limit" in capsys.readouterr().err

    assert main(["redeliver", refused_id]) == 1  # answered 500: not delivered, and not retried
    assert "failed (500)" in capsys.readouterr().out
    assert main(["redeliver", refused_id]) == 0
    assert "delivered (200)" in capsys.readouterr().out
    assert got.ids() == [notice_id] * 3
    assert main(["redeliver", "d99.1"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "no delivery 'd99.1'" in err
    assert main(["deliveries", "--json", "--limit", "2"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["status"], r["redelivery_of"]) for r in rows] == [("delivered", refused_id), ("failed", refused_id)]


def test_metrics_show_attempts_by_status_and_how_old_a_blocked_notice_is(redis_url, receiver):
    from prometheus_client.parser import text_string_to_metric_families

    from tracker.web.metrics import metrics_registry, render_metrics

    _got, url = receiver(Response("down", 503))
    settings = settings_for(redis_url, url)
    store = Store.from_url(redis_url)
    emitted = int(time.time() * 1000)
    answered(store, 1, at_ms=emitted - 90_000)
    dispatch(store, settings, "test", emitted)

    def samples() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        registry = metrics_registry(store)
        found = {}
        for family in text_string_to_metric_families(render_metrics(registry).decode()):
            for sample in family.samples:
                found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return found

    blocked = samples()
    assert blocked[("tracker_notice_deliveries_total", (("status", "retry"),))] == 1
    age = blocked[("tracker_notice_oldest_undelivered_seconds", (("target", url_target_name(url)),))]
    assert 90 <= age < 600
    dispatch(store, settings, "test", emitted + 600_000)
    caught_up = samples()
    assert caught_up[("tracker_notice_deliveries_total", (("status", "delivered"),))] == 1
    assert not [key for key in caught_up if key[0] == "tracker_notice_oldest_undelivered_seconds"]


def test_check_shows_event_urls_without_their_paths_and_with_their_types(redis_url):
    from tracker.cli.check import enabled

    settings = settings_for(redis_url, "https://hooks.example.com/t0ken/in/path|survey.answered;case.opened",
                            "http://10.0.0.5:8080")
    shown = dict(enabled(settings))["event URLs"]
    assert shown == ("2: https://hooks.example.com/… (case.opened, survey.answered); "
                     "http://10.0.0.5:8080 (every public type)")
    assert "t0ken" not in shown


@pytest.mark.cluster
def test_dispatch_records_and_redelivery_run_on_a_redis_cluster(redis_cluster, receiver):
    got, url = receiver(Response("gone", 410))
    redis_cluster.flush()
    settings = settings_for(redis_cluster.url, url)
    store = Store.from_url(redis_cluster.url)
    assert store.is_cluster
    customers = [f"c{i}@example.com" for i in range(6)]  # notice buckets on every master
    sent = [answered(store, 1, customer) for customer in customers]
    report = dispatch(store, settings, "test", T0)
    assert (report.refused, report.delivered) == (1, 5) and sorted(got.ids()) == sorted(sent)
    refused = find_refused(store)
    assert redeliver(store, settings, refused["id"], T0 + 1000).status == "delivered"
    assert len(store.list_deliveries(50, lambda r: True)) == 7
    dispatch(store, settings, "test", int(time.time() * 1000) + 40 * 86_400_000)  # the trim, on every master
    assert all(store.redis.xlen(keys.notices(keys.bucket_of(c))) == 0 for c in customers)


def find_refused(store: Store) -> dict[str, Any]:
    (row,) = store.list_deliveries(50, lambda r: r["status"] == "refused")
    return row


def test_a_redirect_is_refused_and_an_unreachable_url_is_retried(redis_url, receiver):
    from tracker.cli.dev import free_port

    got, url = receiver(Response("", 302, headers={"Location": "http://elsewhere.example/"}))
    closed = f"http://127.0.0.1:{free_port()}/hook"
    settings = settings_for(redis_url, url, closed)
    store = Store.from_url(redis_url)
    answered(store, 1)
    report = dispatch(store, settings, "test", T0)
    assert (report.refused, report.retry) == (1, 1) and len(got.got) == 1
    by_target = {r["target"]: r for r in store.list_deliveries(10, lambda r: True)}
    assert by_target[url_target_name(url)]["detail"] == "answered 302: redirects are not followed"
    unreachable = by_target[url_target_name(closed)]
    assert unreachable["code"] is None and "cannot reach" in unreachable["detail"] and unreachable["next_at"] > T0


def test_a_bucket_another_dispatcher_holds_is_left_to_it(redis_url, receiver):
    got, url = receiver()
    settings = settings_for(redis_url, url)
    store = Store.from_url(redis_url)
    notice_id = answered(store, 1)
    bucket = keys.bucket_of(CUSTOMER)
    assert store.take_dispatch_lease(bucket, "someone-else", 60_000)
    report = dispatch(store, settings, "test", T0)
    assert report.busy == [bucket] and got.got == []
    store.release_dispatch_lease(bucket, "someone-else")
    assert dispatch(store, settings, "test", T0).delivered == 1 and got.ids() == [notice_id]


def test_a_long_backlog_goes_a_batch_per_target_per_run_and_the_rest_next(redis_url, receiver):
    from tracker.notify.dispatch import BATCH

    first, first_url = receiver(path="/first")
    second, second_url = receiver(path="/second")
    settings = settings_for(redis_url, first_url, second_url)
    store = Store.from_url(redis_url)
    sent = [answered(store, n) for n in range(BATCH + 20)]
    report = dispatch(store, settings, "test", T0)
    assert report.left == (keys.bucket_of(CUSTOMER),)  # for the task to go on with at once
    assert first.ids() == second.ids() == sent[:BATCH]  # the second URL did not wait for all of the first's
    assert dispatch(store, settings, "test", T0).left == ()
    assert first.ids() == second.ids() == sent


def test_erasing_a_customer_removes_the_records_of_their_deliveries_and_keeps_the_others(redis_url, receiver):
    from tracker.privacy.erase import erase_customer

    got, url = receiver()
    settings = settings_for(redis_url, url)
    store = Store.from_url(redis_url)
    # Another customer in the same notice bucket: their records stay.
    other = next(f"ola{i}@example.no" for i in range(1000) if keys.bucket_of(f"ola{i}@example.no")
                 == keys.bucket_of(CUSTOMER))
    answered(store, 1)
    answered(store, 2, customer=other)
    dispatch(store, settings, "d1", T0)
    assert len(got.got) == 2
    everyone = store.list_deliveries(50, lambda record: True)
    assert {record["customer"] for record in everyone} == {CUSTOMER, other}
    erase_customer(store, settings, CUSTOMER)
    left = store.list_deliveries(50, lambda record: True)
    assert [record["customer"] for record in left] == [other]
    assert not any(CUSTOMER in raw for raw in store.redis.lrange(keys.deliveries(keys.bucket_of(CUSTOMER)), 0, -1))
