"""What was done outside the store is recorded through a Redis restart, so it is never done twice.

A helpdesk note written, a notice delivered to an event URL, a case's new survey mailed: each is followed by a
write to Redis that says it was done. When Redis is down at that moment (a restart, a failover), the write waits for
it (tracker.backoff.record_through_outage), as the survey's own send always has: giving up at once would have the
next try do it again, the customer or the helpdesk getting it twice. And a case's new survey whose worker died
after the mail went out waits out the hand-off grace before it is mailed again, as every survey does.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from werkzeug import Request, Response

from tests.signing import signed
from tests.support import RedisProcess, World, make_env
from tests.test_cases import answer_data, deliver
from tests.test_writeback import VENDORS, answer_notice, calls, context, serve, target
from tracker.cases.work import update_case
from tracker.config import load_settings
from tracker.notify.dispatch import dispatch
from tracker.notify.events import emit
from tracker.notify.urls import url_targets
from tracker.store import Store, keys
from tracker.surveys import due, send
from tracker.surveys.outcome import Outcome
from tracker.web.app import create_app
from workers.celery_app import create_celery

CUSTOMER = "kari@example.no"
HOUR_MS = 3_600_000


def now_ms() -> int:
    return int(time.time() * 1000)


@contextmanager
def logged(logger: str, text: str) -> Iterator[threading.Event]:
    """Yield an event set once the logger has logged a line holding text."""
    seen = threading.Event()

    class Watch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if text in record.getMessage():
                seen.set()

    watch, named = Watch(logging.WARNING), logging.getLogger(logger)
    named.addHandler(watch)
    try:
        yield seen
    finally:
        named.removeHandler(watch)


@contextmanager
def restarted_once_waiting(server: RedisProcess, waiting: threading.Event) -> Iterator[Callable[[], None]]:
    """Yield a stop for the server (called where the outside act is done); the server starts again once the record
    is seen waiting for it. Without that wait the body ends with the server stopped, and it is started again after."""

    def back() -> None:
        if waiting.wait(30):
            server.start()

    thread = threading.Thread(target=back, daemon=True)

    def stop() -> None:
        server.stop()
        thread.start()

    try:
        yield stop
    finally:
        waiting.set()  # a record that never waited: start it now, for the rest of the test
        if thread.ident is not None:  # started
            thread.join(timeout=30)
        if server.process is None or server.process.poll() is not None:
            server.start()


@pytest.fixture
def own_store(restartable_redis: RedisProcess) -> Store:
    return Store.from_url(restartable_redis.url)


def test_a_note_written_while_redis_restarts_is_recorded_when_it_is_back_and_never_written_again(
        httpserver: Any, restartable_redis: RedisProcess, own_store: Store, settings: Any) -> None:
    v = VENDORS["zendesk"]
    status, documented = v.note_reply
    with logged("tracker.writeback.base", "recording it waits for storage") as waiting, \
            restarted_once_waiting(restartable_redis, waiting) as stop:

        def note_then_outage(request: Request) -> Response:
            stop()  # the helpdesk has the note; the tracker's Redis goes away before it hears so
            return Response(json.dumps(documented), status=status, content_type="application/json")

        httpserver.expect_oneshot_request(v.note[1], method=v.note[0]).respond_with_handler(note_then_outage)
        serve(httpserver, v)
        writer, notice = target(httpserver, v), answer_notice(v, 2, False)
        first = writer.deliver(notice, context(own_store, settings))

    assert first.status == "delivered", first
    again = writer.deliver(notice, context(own_store, settings))
    assert again.status == "skipped", again
    assert len(calls(httpserver, *v.note)) == 1
    assert len(calls(httpserver, *v.tag_write[:2])) == 1


def test_a_notice_delivered_while_redis_restarts_is_recorded_when_it_is_back_and_never_delivered_again(
        httpserver: Any, restartable_redis: RedisProcess, own_store: Store) -> None:
    got: list[str] = []
    settings = load_settings(make_env(restartable_redis.url, 2525, TRACKER_EVENT_URLS=httpserver.url_for("/hook"),
                                      TRACKER_ALERT_ALLOW_PRIVATE="1"))
    emit(own_store, "survey.answered", CUSTOMER, {"survey": {"id": "s1"}, "customer": {"email": CUSTOMER},
                                                  "answer": {"rating": 2}}, "survey.answered:s1", now_ms())
    with logged("tracker.notify.dispatch", "recording it waits for storage") as waiting, \
            restarted_once_waiting(restartable_redis, waiting) as stop:

        def taken_then_outage(request: Request) -> Response:
            got.append(request.headers["webhook-id"])
            if len(got) == 1:
                stop()  # the receiver has the notice; the tracker's Redis goes away before it hears so
            return Response("ok", 200)

        httpserver.expect_request("/hook", method="POST").respond_with_handler(taken_then_outage)
        report = dispatch(own_store, settings, "test", now_ms(), targets=url_targets(settings))

    assert report.delivered == 1, report
    assert dispatch(own_store, settings, "test", now_ms() + HOUR_MS, targets=url_targets(settings)).delivered == 0
    assert got == ["survey.answered:s1"]
    assert [r["status"] for r in own_store.list_deliveries(10, lambda record: True)] == ["delivered"]


def _world(restartable_redis: RedisProcess, env: dict[str, str], smtp: Any) -> tuple[World, Store, Any]:
    """The survey loop in-process on the restartable Redis, with case surveys on and no throttle."""
    own_env = {**env, "TRACKER_REDIS_URL": restartable_redis.url, "TRACKER_CASE_RESURVEY": "1",
               "TRACKER_SURVEY_THROTTLE_DAYS": "0"}
    settings = load_settings(own_env)
    store = Store.from_url(settings.redis_url)
    client = create_app(settings, store, enqueue=lambda *args: None).test_client()

    def post(source: str, body: Any, headers: dict[str, str] | None = None) -> Any:
        raw = json.dumps(body).encode()
        signed_headers, query = signed(source, raw, headers=headers)
        return client.post(f"/webhooks/{source}", data=raw, query_string=query,
                           headers={"Content-Type": "application/json", **signed_headers})

    return World(post, store, own_env, smtp, client), store, settings


def test_an_alert_queued_while_redis_restarts_is_released_when_it_is_back_and_never_queued_again(
        restartable_redis: RedisProcess, env: dict[str, str], smtp: Any) -> None:
    from tracker.alerts.held import HELD_FOR_MS, queue_held, resend_held

    alerting = {**env, "TRACKER_ALERT_URLS": "https://alerts.example.com/hook"}
    world, store, settings = _world(restartable_redis, alerting, smtp)
    sid = world.solved_and_answered("T-1", CUSTOMER, 1, "Slow")  # held: the web's kick goes nowhere here
    assert store.alerts_held_before(now_ms() + 1, 10) == [(sid, 1)]
    queued: list[str] = []
    with logged("tracker.alerts.held", "releasing it waits for storage") as waiting, \
            restarted_once_waiting(restartable_redis, waiting) as stop:

        def queue_then_outage(url: str, body: str) -> None:
            queued.append(url)
            stop()  # the broker has the delivery; the tracker's Redis goes away before the alert is released

        assert queue_held(store, settings, sid, 1, now_ms(), queue_then_outage, "task-a") == 1
    assert store.alerts_held_before(now_ms() + HELD_FOR_MS, 10) == []
    assert resend_held(store, now_ms() + HELD_FOR_MS, lambda *alert: queued.append("again")) == 0
    assert queued == ["https://alerts.example.com/hook"]


def _closed_case(world: World, store: Store, settings: Any) -> str:
    """An unhappy answer's case, closed by a lead: its new survey falls due; return its due member."""
    sid = world.solved_and_answered("T-1", CUSTOMER, 1, "Slow")
    deliver(store, settings, answer_data(sid, CUSTOMER, 1, False))
    case_id = keys.case_id(sid, CUSTOMER)
    update_case(store, settings, case_id, now_ms(), "lead", status="not_recovered")
    return f"{keys.CASE_DUE}{case_id}"


def test_a_case_survey_mailed_while_redis_restarts_is_recorded_when_it_is_back_and_mailed_once(
        restartable_redis: RedisProcess, env: dict[str, str], smtp: Any) -> None:
    from tests.support import send_all

    world, store, settings = _world(restartable_redis, env, smtp)
    member = _closed_case(world, store, settings)
    mails = len(smtp.messages)
    with logged("tracker.cases.resurvey", "recording it waits for storage") as waiting, \
            restarted_once_waiting(restartable_redis, waiting) as stop:
        smtp.on_data = lambda message: stop()  # the server has the mail; Redis goes away before the 250
        try:
            outcomes = send_all(store, settings)
        finally:
            smtp.on_data = None

    assert [o.status for o in outcomes] == ["sent"]
    assert due.sweep(store, now_ms() + 2 * send.HANDOFF_GRACE_MS)[1] == []
    assert store.redis.zscore(keys.due_of(member), member) is None
    assert len(smtp.wait_for(mails + 1)) == mails + 1


def test_a_case_survey_whose_worker_died_after_the_mail_went_waits_out_the_hand_off_grace_then_goes_once_more(
        restartable_redis: RedisProcess, env: dict[str, str], smtp: Any, start_worker: Any) -> None:
    world, store, settings = _world(restartable_redis, env, smtp)
    member = _closed_case(world, store, settings)
    mails = len(smtp.messages)
    holding, release = threading.Event(), threading.Event()

    def hold(message: Any) -> None:  # the server has the whole mail; the worker dies before it hears 250
        holding.set()
        release.wait(60)

    smtp.on_data = hold
    worker = start_worker(TRACKER_REDIS_URL=restartable_redis.url, TRACKER_CASE_RESURVEY="1")
    claimed, members = due.sweep(store, now_ms())
    assert members == [member]
    create_celery(settings).send_task("tracker.send_surveys", args=[members, claimed])
    try:
        assert holding.wait(30), worker.output()
        worker.kill()
        killed_at = now_ms()
    finally:
        smtp.on_data = None
        release.set()
    [first] = smtp.wait_for(mails + 1)[mails:]
    # Its claim comes back after the lease; the mail was handed off and not recorded, so it waits out the grace.
    at = killed_at + due.LEASE_MS + 1
    again, leased = due.sweep(store, at)
    assert leased == [member]
    from tracker.mail.smtp import SmtpSender

    with SmtpSender(settings.smtp_url) as sender:
        assert due.send_due(store, settings, sender, member, again, at) == Outcome("deferred", "handoff_in_progress")
        assert len(smtp.messages) == mails + 1
        at += send.HANDOFF_GRACE_MS + 1
        again, leased = due.sweep(store, at)
        assert leased == [member]
        assert due.send_due(store, settings, sender, member, again, at) == Outcome("sent")
    resent = smtp.wait_for(mails + 2)[-1]
    assert resent["Message-ID"] == first["Message-ID"]  # the same mail: a resend is recognisable
    assert due.sweep(store, at + HOUR_MS)[1] == []


class ReplyDropper:
    """A TCP relay to a Redis that, once armed with a marker, passes on the next command holding it and then closes
    the client's connection in place of its reply: the command is applied and its caller never hears so (a network
    that failed at that moment). A NOSCRIPT reply (the script was not run) is passed on, and the relay stays armed."""

    def __init__(self, upstream_port: int):
        self.upstream_port, self.marker, self.dropped = upstream_port, b"", 0
        self.sockets: list[socket.socket] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self, marker: bytes) -> None:
        self.marker = marker

    def close(self) -> None:
        self.listener.close()
        for end in self.sockets:
            _close(end)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            self.sockets += [client, upstream]
            dropping = threading.Event()
            threading.Thread(target=self._ask, args=(client, upstream, dropping), daemon=True).start()
            threading.Thread(target=self._answer, args=(upstream, client, dropping), daemon=True).start()

    def _ask(self, client: socket.socket, upstream: socket.socket, dropping: threading.Event) -> None:
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                if self.marker and self.marker in data:
                    dropping.set()
                upstream.sendall(data)
        _close(client)
        _close(upstream)

    def _answer(self, upstream: socket.socket, client: socket.socket, dropping: threading.Event) -> None:
        with contextlib.suppress(OSError):
            while data := upstream.recv(65536):
                if dropping.is_set() and data.startswith(b"-NOSCRIPT"):  # not run: it is sent again once loaded
                    dropping.clear()
                elif dropping.is_set():
                    self.marker, self.dropped = b"", self.dropped + 1
                    break
                client.sendall(data)
        _close(client)
        _close(upstream)


def _close(end: socket.socket) -> None:
    with contextlib.suppress(OSError):
        end.shutdown(socket.SHUT_RDWR)
    end.close()


def test_a_delivery_whose_record_was_applied_and_its_reply_lost_is_recorded_once(
        httpserver: Any, restartable_redis: RedisProcess) -> None:
    """redis-py sends a command again when its reply is lost (and record_through_outage calls again after an
    outage): the attempt's record is written once, and the dispatch goes on from it."""
    relay = ReplyDropper(restartable_redis.port)
    try:
        store = Store.from_url(f"redis://127.0.0.1:{relay.port}/0")
        settings = load_settings(make_env(store_url := f"redis://127.0.0.1:{relay.port}/0", 2525,
                                          TRACKER_EVENT_URLS=httpserver.url_for("/hook"),
                                          TRACKER_ALERT_ALLOW_PRIVATE="1"))
        assert settings.redis_url == store_url
        httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
        emit(store, "survey.answered", CUSTOMER, {"survey": {"id": "s1"}, "customer": {"email": CUSTOMER},
                                                  "answer": {"rating": 2}}, "survey.answered:s1", now_ms())
        relay.arm(keys.dispatch_recorded(keys.bucket_of(CUSTOMER)).encode())
        report = dispatch(store, settings, "test", now_ms(), targets=url_targets(settings))
        assert relay.dropped == 1 and report.delivered == 1, (relay.dropped, report)
        records = store.list_deliveries(10, lambda record: True)
        assert [r["status"] for r in records] == ["delivered"], records
        assert store.delivery_counts().get("delivered") == 1  # /metrics counts the attempt once
        assert dispatch(store, settings, "test", now_ms() + HOUR_MS, targets=url_targets(settings)).delivered == 0
        assert len(httpserver.log) == 1
        store.redis.close()
    finally:
        relay.close()
