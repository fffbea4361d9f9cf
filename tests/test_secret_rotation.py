"""Rotating TRACKER_SECRET_KEY: with the replaced key in TRACKER_SECRET_KEY_PREVIOUS, what was signed or kept with it
still holds (survey links, reply addresses, dashboard sessions and forms, opt-outs of erased customers), and alerts
and event URLs are signed with both keys; without it, none of that holds."""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import replace
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.support import drain, send_all, solved_event, survey_link, tracker
from tracker.alerts.delivery import alert_keys, alert_secret
from tracker.config import ConfigError, Settings, load_settings
from tracker.notify.urls import event_keys, event_secret
from tracker.privacy.erase import erase_customer
from tracker.signing import sign_each
from tracker.store import keys
from tracker.surveys.optout import address_digests, opt_out, suppress, suppression_list, unsubscribe
from tracker.surveys.tokens import make_token, read_token
from tracker.web.app import create_app

NEW = secrets.token_urlsafe(32)


def rotated(settings: Settings, keep_old: bool = True) -> Settings:
    """The settings after TRACKER_SECRET_KEY changed to NEW, the old key kept in TRACKER_SECRET_KEY_PREVIOUS or not."""
    return replace(settings, secret_key=NEW, previous_secret_keys=(settings.secret_key,) if keep_old else ())


def _client(settings: Settings, store: Any) -> Any:
    return create_app(settings, store, enqueue=lambda task, *args: None).test_client()


def test_earlier_keys_are_read_checked_like_the_key_and_named_in_errors(env):
    other = secrets.token_urlsafe(32)
    loaded = load_settings({**env, "TRACKER_SECRET_KEY_PREVIOUS": f" {other} ,{env['TRACKER_SECRET_KEY']},{other}"})
    assert loaded.previous_secret_keys == (other,)  # the key itself and repeats left out
    assert loaded.secret_keys == (env["TRACKER_SECRET_KEY"], other)
    assert load_settings(env).previous_secret_keys == ()
    name = "TRACKER_SECRET_KEY_PREVIOUS"
    for value, words in (("short", f"{name} must be at least 32 characters long, got 5"),
                         ("change-me-please-change-me-please-now", f"{name} looks like a placeholder"),
                         (f"{other},tiny", f"{name} (key 2) must be at least 32")):
        with pytest.raises(ConfigError, match=re.escape(words)):
            load_settings({**env, name: value})
    without_key = {k: v for k, v in env.items() if k != "TRACKER_SECRET_KEY"}
    with pytest.raises(ConfigError, match="TRACKER_SECRET_KEY_PREVIOUS is set without TRACKER_SECRET_KEY"):
        load_settings({**without_key, name: other}, needs="store")


def test_a_survey_and_unsubscribe_link_mailed_before_the_rotation_work_while_the_old_key_is_kept(
        post_event, store, settings, smtp):
    assert post_event("standard", solved_event(ticket="T-ROT-1", at=time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 120)))).status_code == 202
    drain(store, settings)
    assert [o.status for o in send_all(store, settings)] == ["sent"]
    mail = smtp.wait_for(1)[0]
    link = survey_link(mail, 4)
    unsubscribe_link = re.sub(r"^<https?://[^/]+|>$", "", str(mail["List-Unsubscribe"]))
    forgotten = _client(rotated(settings, keep_old=False), store)
    assert forgotten.get(link).status_code == 404
    assert forgotten.post(unsubscribe_link, data={"List-Unsubscribe": "One-Click"}).status_code == 404
    kept = _client(rotated(settings), store)
    assert kept.get(link).status_code == 200
    assert kept.post(link, data={"rating": "4"}).status_code == 200
    answered = store.survey(link.removeprefix("/s/").split("-")[0])
    assert answered is not None and answered.status == "answered"
    # The one-click unsubscribe of a mail sent before the rotation (RFC 8058) still works.
    assert kept.post(unsubscribe_link, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert opt_out(store, rotated(settings), "kari@example.no").unsubscribed


def test_a_reply_address_made_before_the_rotation_still_names_its_survey():
    old, sid = secrets.token_urlsafe(32), "a" * 20
    token = make_token(old, sid)
    assert read_token((NEW, old), token) == sid
    assert read_token((NEW,), token) is None
    assert read_token(NEW, make_token(NEW, sid)) == sid


def _csrf(page: Any) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert match, page.get_data(as_text=True)
    return match.group(1)


def test_a_dashboard_session_and_form_from_before_the_rotation_keep_working_while_the_old_key_is_kept(
        store, settings):
    before = _client(settings, store)
    key = store.create_key("lead")
    assert before.post("/dashboard/login", data={"key": key, "csrf_token": _csrf(
        before.get("/dashboard/login"))}).status_code == 303
    form_token = _csrf(before.get("/dashboard"))
    cookie = before.get_cookie("tracker_dashboard", path="/dashboard")
    assert cookie is not None
    for keep_old, signed_in in ((False, False), (True, True)):
        after = _client(rotated(settings, keep_old), store)
        after.set_cookie("tracker_dashboard", cookie.value, path="/dashboard")
        page = after.get("/dashboard")
        assert (page.status_code == 200) is signed_in, page.status_code
    signed_out = after.post("/dashboard/logout", data={"csrf_token": form_token})
    assert signed_out.status_code == 303 and signed_out.headers["Location"].endswith("/dashboard/login")


def test_an_erased_customers_opt_out_holds_while_the_old_key_is_kept_and_moves_to_the_new_key(store, settings):
    email, now = "gone@example.no", int(time.time() * 1000)
    unsubscribe(store, settings, email, now - 1000)
    suppress(store, settings, email, now - 1000)
    erase_customer(store, settings, email)  # only the hashes, keyed with the old key, are left
    assert opt_out(store, rotated(settings, keep_old=False), email).reason is None
    kept = opt_out(store, rotated(settings), email)
    assert kept.unsubscribed and kept.suppressed and kept.unsubscribed_at_ms == now - 1000
    # Opting out again under the new key keeps one entry, with the first time, under the new key's hash.
    unsubscribe(store, rotated(settings), email, now)
    suppress(store, rotated(settings), email, now)
    new_digest = address_digests(rotated(settings, keep_old=False), email)[0]
    assert store.redis.hgetall(keys.OPT_OUTS["unsubscribed"]) == {new_digest: str(now - 1000)}
    assert list(store.redis.hgetall(keys.OPT_OUTS["suppressed"])) == [new_digest]
    listed = suppression_list(store, rotated(settings))
    assert listed.addresses == (email,) and listed.erased == 0


def test_alerts_and_events_are_signed_with_each_key_so_receivers_of_either_secret_verify(settings):
    body, stamp = b'{"type":"customer.unhappy"}', int(time.time())
    after = rotated(settings)
    for signing_keys, secrets_of in ((alert_keys, alert_secret), (event_keys, event_secret)):
        header = sign_each(signing_keys(after), "msg_1", stamp, body)
        assert len(header.split(" ")) == 2
        headers = {"webhook-id": "msg_1", "webhook-timestamp": str(stamp), "webhook-signature": header}
        for receiver in (secrets_of(settings), secrets_of(after)):  # one not yet told, one told
            assert Webhook(receiver).verify(body, headers) is not None
        alone = sign_each(signing_keys(rotated(settings, keep_old=False)), "msg_1", stamp, body)
        with pytest.raises(WebhookVerificationError):
            Webhook(secrets_of(settings)).verify(body, {**headers, "webhook-signature": alone})


def test_check_says_how_many_earlier_keys_are_accepted_and_shows_none(env):
    old = secrets.token_urlsafe(32)
    result = tracker({**env, "TRACKER_SECRET_KEY_PREVIOUS": old}, "check")
    assert result.returncode == 0, result.stderr
    assert re.search(r"earlier keys +1 still accepted \(TRACKER_SECRET_KEY_PREVIOUS\)\n", result.stdout)
    assert old not in result.stdout + result.stderr
    assert "earlier keys" not in tracker(env, "check").stdout
    refused = tracker({**env, "TRACKER_SECRET_KEY_PREVIOUS": "too-short"}, "check")
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "TRACKER_SECRET_KEY_PREVIOUS must be at least 32 characters long" in refused.stderr
