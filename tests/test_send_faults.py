"""Sending under faults: a mail that cannot be built or carried is parked alone, and each survey is mailed once."""

from __future__ import annotations

import asyncio
import email
import json
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from celery.exceptions import SoftTimeLimitExceeded

from tests.signing import signed
from tests.support import drain, due_score, iso, send_all, solved_event, wait_until
from tracker.backoff import RECORD_RETRY
from tracker.cli.dev import free_port
from tracker.config import Settings, load_settings
from tracker.mail.smtp import SmtpSender
from tracker.store import Store, keys
from tracker.surveys import due, send
from tracker.surveys.outcome import Outcome
from tracker.surveys.tokens import survey_id
from tracker.web.app import create_app
from workers.celery_app import create_celery

JORN = "jørn@example.no"  # a non-ASCII local part (RFC 6531): only a server offering SMTPUTF8 can carry it
A_MINUTE_MS = 60_000  # how soon a dead worker's claimed surveys must come back, at most


class Sink:
    """A real SMTP server's handler that keeps each mail with its envelope and lets a test act before it answers."""

    def __init__(self) -> None:
        self.mails: list[tuple[EmailMessage, Any]] = []
        self.data_commands = 0
        # Runs in a thread before the server answers DATA (it may block); a reply it returns is the answer.
        self.before_reply: Callable[[int, Any], str | None] | None = None
        self.changed = threading.Condition()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.data_commands += 1
        if self.before_reply is not None:
            loop = asyncio.get_running_loop()
            reply = await loop.run_in_executor(None, self.before_reply, self.data_commands, envelope)
            if reply:
                return reply
        # A mail sent with SMTPUTF8 carries raw UTF-8 headers; every other mail is ASCII, a subset.
        message = email.message_from_string(envelope.content.decode("utf-8"), policy=default_policy)
        with self.changed:
            self.mails.append((message, envelope))  # type: ignore[arg-type]
            self.changed.notify_all()
        return "250 OK"

    def wait_for(self, count: int, timeout: float = 30) -> list[tuple[EmailMessage, Any]]:
        with self.changed:
            if not self.changed.wait_for(lambda: len(self.mails) >= count, timeout):
                raise AssertionError(f"expected {count} mails within {timeout}s, got {len(self.mails)}")
            return list(self.mails)

    def recipients(self) -> list[str]:
        return sorted(rcpt for _, envelope in self.mails for rcpt in envelope.rcpt_tos)


@pytest.fixture
def start_sink() -> Iterator[Callable[..., tuple[Sink, str]]]:
    """Start aiosmtpd servers; yield a starter returning the handler and the server's URL.

    aiosmtpd's Controller offers SMTPUTF8 unless told `enable_SMTPUTF8=False`.
    """
    controllers: list[Controller] = []

    def start(**smtp_parameters: Any) -> tuple[Sink, str]:
        sink = Sink()
        controller = Controller(sink, hostname="127.0.0.1", port=free_port(), **smtp_parameters)
        controller.start()
        controllers.append(controller)
        return sink, f"smtp://127.0.0.1:{controller.port}"

    yield start
    for controller in controllers:
        controller.stop()


def _solve(post: Callable[[bytes], Any], ticket: str, address: str, seconds_ago: float, **fields: Any) -> str:
    """Deliver a solved ticket for address; return its due member."""
    event = solved_event(ticket=ticket, email_address=address, at=iso(seconds_ago), **fields)
    event["customer"]["id"] = f"c-{ticket}"
    response = post(json.dumps(event).encode())
    assert response.status_code == 202, response.json
    return f"standard:{ticket}"


@pytest.fixture
def post(post_event: Any) -> Callable[[bytes], Any]:
    return lambda raw: post_event("standard", raw)


def _sid(store: Store, member: str) -> str:
    surveyed = store.surveyed(member)
    assert surveyed is not None and surveyed.solved_at_ms is not None
    return survey_id(member, surveyed.solved_at_ms)


def now_ms() -> int:
    return int(time.time() * 1000)


def _status(store: Store, sid: str) -> str:
    survey = store.survey(sid)
    return survey.status if survey else ""


def _enqueue_chunk(settings: Settings, members: list[str], claimed: int) -> None:
    """Hand one chunk to the worker as the sweep task does."""
    create_celery(settings).send_task("tracker.send_surveys", args=[members, claimed])


# --- item 5: a mail that cannot be built or carried ------------------------------------------------------------

def test_a_non_ascii_local_part_goes_out_with_smtputf8_when_the_server_offers_it(post, store, env, start_sink):
    sink, url = start_sink(enable_SMTPUTF8=True)
    settings = load_settings({**env, "TRACKER_SMTP_URL": url})
    _solve(post, "U-1", JORN, 60)
    drain(store, settings)
    assert send_all(store, settings) == [Outcome("sent")]
    ((mail, envelope),) = sink.wait_for(1)
    assert envelope.rcpt_tos == [JORN] and "SMTPUTF8" in envelope.mail_options
    assert mail["To"].addresses[0].addr_spec == JORN


def test_a_non_ascii_local_part_is_parked_with_its_reason_when_the_server_lacks_smtputf8(
        post, store, env, start_sink, client, caplog):
    sink, url = start_sink(enable_SMTPUTF8=False)
    settings = load_settings({**env, "TRACKER_SMTP_URL": url})
    member = _solve(post, "U-2", JORN, 60)
    drain(store, settings)
    caplog.set_level(logging.INFO, logger="tracker")
    assert send_all(store, settings) == [Outcome("failed", "address_needs_smtputf8")]
    (survey,) = store.customer_surveys(JORN)
    assert (survey.status, survey.reason) == ("failed", "address_needs_smtputf8")
    assert due_score(store, member) is None  # parked: not claimed again into the same failure
    assert store.redis.get(keys.customer(JORN, "throttle")) is None  # the slot goes to the next survey
    assert not store.is_suppressed(JORN)  # the address is fine; this server cannot carry it
    assert sink.mails == []
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [(getattr(r, "survey", None), getattr(r, "reason", None)) for r in errors] == \
        [(survey.sid, "address_needs_smtputf8")]
    assert not [r for r in caplog.records if "jørn" in json.dumps(vars(r), default=str)]
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'tracker_surveys_failed_total{reason="address_needs_smtputf8"} 1.0' in metrics


def test_one_bad_survey_between_good_ones_is_parked_and_the_rest_of_the_chunk_goes_out(
        post, store, env, start_sink, start_worker, tmp_path):
    # An operator's template that cannot render one ticket's mail, and an address this server cannot carry.
    (tmp_path / "mail").mkdir()
    (tmp_path / "mail" / "survey.txt").write_text(
        '{% if ticket_subject == "Boom" %}{{ no_such_value }}{% endif %}{{ greeting }}\n'
        "{% for b in buttons %}{{ b.value }}: {{ b.url }}\n{% endfor %}")
    sink, url = start_sink(enable_SMTPUTF8=False)
    overrides = {"TRACKER_SMTP_URL": url, "TRACKER_TEMPLATE_DIR": str(tmp_path)}
    settings = load_settings({**env, **overrides})
    good = [_solve(post, "G-1", "anna@example.no", 40)]
    carried = _solve(post, "G-2", JORN, 30)
    unbuilt = _solve(post, "G-3", "kari@example.no", 20, subject="Boom")
    good.append(_solve(post, "G-4", "per@example.no", 10))
    drain(store, settings)
    claimed, members = due.sweep(store, now_ms())
    assert members == [good[0], carried, unbuilt, good[1]]
    start_worker(**overrides)
    _enqueue_chunk(settings, members, claimed)
    sink.wait_for(2)

    def parked() -> list[tuple[str, str | None]]:
        surveys = [store.survey(_sid(store, m)) for m in (carried, unbuilt)]
        done = [(s.status, s.reason) for s in surveys if s and s.status == "failed"]
        return done if len(done) == 2 else []

    assert wait_until(parked, what="both bad surveys to be parked") == [
        ("failed", "address_needs_smtputf8"), ("failed", "mail_not_built")]
    wait_until(lambda: all(_status(store, _sid(store, m)) == "sent" for m in good), what="good ones sent")
    assert sink.recipients() == ["anna@example.no", "per@example.no"]
    # A send is recorded on the survey, then settled on the ticket (its due entry goes): two steps, two slots.
    wait_until(lambda: all(due_score(store, m) is None for m in members), what="every due entry settled")


def test_a_survey_that_raises_before_it_has_a_record_is_parked_and_counted_alone(post, store, settings, smtp,
                                                                                 client):
    members = [_solve(post, f"P-{n}", address, 30 - n)
               for n, address in enumerate(["anna@example.no", "kari@example.no", "per@example.no"])]
    drain(store, settings)
    store.redis.hset(keys.ticket(members[1]), "solved_at", "not-a-time")  # a record damaged by hand
    claimed, leased = due.sweep(store, now_ms())
    with SmtpSender(settings.smtp_url) as sender:
        chunk = due.send_chunk(store, settings, sender, leased, claimed)
    assert [chunk.outcomes[m] for m in members] == [
        Outcome("sent"), Outcome("failed", "internal_error"), Outcome("sent")]
    assert chunk.left == [] and all(due_score(store, m) is None for m in members)
    assert [m["To"].addresses[0].addr_spec for m in smtp.wait_for(2)] == ["anna@example.no", "per@example.no"]
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'tracker_surveys_failed_total{reason="internal_error"} 1.0' in metrics


# --- item 10: exactly one mail under faults -------------------------------------------------------------------

def test_redis_restarted_between_hand_off_and_record_ends_with_exactly_one_mail(
        env, restartable_redis, start_sink, start_worker, redis_url):
    sink, url = start_sink()
    # The worker's broker stays up on the session's Redis; the tracker's own Redis is the one that restarts.
    overrides = {"TRACKER_SMTP_URL": url, "TRACKER_REDIS_URL": restartable_redis.url, "TRACKER_BROKER_URL": redis_url}
    settings = load_settings({**env, **overrides})
    store = Store.from_url(settings.redis_url)
    client = create_app(settings, store, enqueue=lambda *args: None).test_client()

    def post(raw: bytes) -> Any:
        headers, query = signed("standard", raw)
        return client.post("/webhooks/standard", data=raw, query_string=query,
                           headers={"Content-Type": "application/json", **headers})

    member = _solve(post, "R-1", "kari@example.no", 60)
    drain(store, settings)
    sid = _sid(store, member)
    worker = start_worker(**overrides)

    def gave_up() -> bool:
        return "raised unexpected" in worker.output()

    # The server has the mail when Redis goes down, and only then says 250: the record meets the outage.
    sink.before_reply = lambda count, envelope: restartable_redis.stop()
    claimed, members = due.sweep(store, now_ms())
    _enqueue_chunk(settings, members, claimed)
    sink.wait_for(1)
    wait_until(lambda: "recording it waits for storage" in worker.output() or gave_up(),
               what="the worker to meet the outage when it records the mail")
    sink.before_reply = None
    restartable_redis.start()
    wait_until(lambda: _status(store, sid) == "sent" or gave_up(), what="the mail recorded, or the task given up")
    # A sweep an hour on (after any lease and grace) must find nothing to mail again.
    later = now_ms() + 3_600_000
    again, members = due.sweep(store, later)
    with SmtpSender(settings.smtp_url) as sender:
        assert [due.send_due(store, settings, sender, m, again, later).status for m in members] in ([], ["none"])
    assert len(sink.mails) == 1 and store.stats() == {}
    # Counted once: the send task forwards its outbox (the sent survey's sums) at the end of its chunk, a moment
    # after the survey reads "sent"; asserting at once raced that forward (seen once in CI).
    wait_until(lambda: store.metric_counts().sent >= 1, what="the sent survey counted by the task's forward")
    assert store.metric_counts().sent == 1


def test_a_killed_workers_claims_come_back_within_a_minute_and_each_goes_out_once(
        post, store, env, start_sink, start_worker):
    sink, url = start_sink()
    overrides = {"TRACKER_SMTP_URL": url}
    settings = load_settings({**env, **overrides})
    members = [_solve(post, f"K-{n}", f"k{n}@example.no", 30 - n) for n in range(3)]
    drain(store, settings)
    holding, release, first_try = threading.Event(), threading.Event(), []

    def hold_the_first(count: int, envelope: Any) -> str | None:
        if count != 1:
            return None
        first_try.append(email.message_from_bytes(envelope.content, policy=default_policy)["Message-ID"])
        holding.set()
        release.wait(60)
        return "451 4.3.0 The client went away"  # this first try never reached the customer

    sink.before_reply = hold_the_first
    worker = start_worker(**overrides)
    claimed, leased = due.sweep(store, now_ms())
    assert leased == members
    _enqueue_chunk(settings, members, claimed)
    assert holding.wait(30), worker.output()
    worker.kill()
    killed_at = now_ms()
    release.set()
    # The dead worker's claims run out within a minute of its death (not five).
    assert due.LEASE_MS <= A_MINUTE_MS
    assert all(due_score(store, m) <= killed_at + A_MINUTE_MS for m in members), [due_score(store, m) for m in members]
    # One minute on, a sweep leases them again; the one caught mid-hand-off waits out the hand-off grace.
    at = killed_at + A_MINUTE_MS + 1
    again, leased = due.sweep(store, at)
    assert leased == members
    with SmtpSender(settings.smtp_url) as sender:
        outcomes = [due.send_due(store, settings, sender, m, again, at) for m in members]
        assert [o.status for o in outcomes] == ["deferred", "sent", "sent"]
        at += send.HANDOFF_GRACE_MS + 1
        again, leased = due.sweep(store, at)
        assert leased == [members[0]]
        assert due.send_due(store, settings, sender, members[0], again, at) == Outcome("sent")
    mails = sink.wait_for(3)
    assert sink.recipients() == ["k0@example.no", "k1@example.no", "k2@example.no"]
    resent = next(mail for mail, envelope in mails if envelope.rcpt_tos == ["k0@example.no"])
    assert resent["Message-ID"] == first_try[0]  # the same mail: a resend is recognisable
    assert due.sweep(store, at + 10 * A_MINUTE_MS)[1] == []


def test_the_hand_off_grace_outlasts_every_live_attempt_to_record_a_send(settings: Settings) -> None:
    # Another worker mails a survey again only once the one that handed it off can no longer be recording it: past
    # the send task's hard time limit (which ends the attempt) and the record's tries, with room for a paused worker.
    conf = create_celery(settings).conf
    retry = RECORD_RETRY
    record_s = sum(min(retry.cap_s, retry.first_s * retry.factor ** n) * 1.5 for n in range(retry.attempts))
    assert send.HANDOFF_GRACE_MS >= 3 * (conf.task_time_limit + record_s) * 1000


def test_a_send_task_stopped_at_its_soft_time_limit_says_so_in_a_line_and_its_survey_comes_back(
        post, store, env, start_sink, caplog):
    # A worker paused past the limit (a frozen VM, SIGSTOP) meets it when it resumes: Celery then logged an ERROR
    # with a stack trace ("raised unexpected: SoftTimeLimitExceeded"). The limit arrives as Celery's pool delivers
    # it, a signal whose handler raises SoftTimeLimitExceeded in the task, here while the server holds the DATA.
    sink, url = start_sink()
    settings = load_settings({**env, "TRACKER_SMTP_URL": url})
    member = _solve(post, "L-1", "limit@example.no", 60)
    drain(store, settings)
    held, release = threading.Event(), threading.Event()

    def hold(count: int, envelope: Any) -> str | None:
        held.set()
        release.wait(30)
        return None

    def limit(signum: int, frame: Any) -> None:
        raise SoftTimeLimitExceeded()

    sink.before_reply = hold
    claimed, leased = due.sweep(store, now_ms())
    assert leased == [member]
    task = create_celery(settings).tasks["tracker.send_surveys"]
    previous = signal.signal(signal.SIGALRM, limit)
    try:
        def stop_it() -> None:
            if held.wait(30):
                signal.pthread_kill(threading.main_thread().ident, signal.SIGALRM)
            release.set()  # the server may answer now: the task has been told to stop

        threading.Thread(target=stop_it, daemon=True).start()
        with caplog.at_level(logging.WARNING, logger="workers.tasks"):
            result = task.apply(args=[[member], claimed])
    finally:
        signal.signal(signal.SIGALRM, previous)
        release.set()
    assert result.successful(), result.traceback
    assert [r.getMessage() for r in caplog.records if r.name == "workers.tasks"] == [
        "tracker.send_surveys: stopped at its time limit of 120 s; its work is taken up by its next run"]
    # Its survey was handed off and not recorded: it waits out the hand-off grace, then goes out once.
    at = now_ms() + due.LEASE_MS + 1
    again, leased = due.sweep(store, at)
    assert leased == [member]
    with SmtpSender(settings.smtp_url) as sender:
        assert due.send_due(store, settings, sender, member, again, at).status == "deferred"


def test_a_slow_but_alive_send_keeps_its_lease(post, store, env, start_sink, start_worker):
    sink, url = start_sink()
    overrides = {"TRACKER_SMTP_URL": url}
    settings = load_settings({**env, **overrides})
    members = [_solve(post, f"S-{n}", f"s{n}@example.no", 30 - n) for n in range(3)]
    drain(store, settings)
    holding, release = threading.Event(), threading.Event()

    def slow_second(count: int, envelope: Any) -> None:
        if count == 2:
            holding.set()
            release.wait(60)

    sink.before_reply = slow_second
    worker = start_worker(**overrides)
    # Leased ten seconds ago: by the time the second mail is slow, the first lease may well have run out.
    claimed, leased = due.sweep(store, now_ms() - 10_000)
    assert leased == members
    _enqueue_chunk(settings, members, claimed)
    try:
        assert holding.wait(30), worker.output()
        # After the lease the sweep gave, another sweep finds nothing to take: the live send renewed it.
        assert due.sweep(store, claimed + 1)[1] == []
    finally:
        release.set()
    sink.wait_for(3)
    wait_until(lambda: all(due_score(store, m) is None for m in members), what="every survey recorded")
    assert sink.recipients() == ["s0@example.no", "s1@example.no", "s2@example.no"]
    # The chunk forwards its sends' counts a bucket at a time, at the latest when it ends.
    wait_until(lambda: store.metric_counts().sent == 3, what="three sends counted")
