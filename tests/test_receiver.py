"""POST /webhooks/<source> through the real app: every row of SPEC §4's response table, and nothing else."""

from __future__ import annotations

import base64
import dataclasses
import json
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from http import HTTPStatus
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.signing import SECRETS, signed
from tests.support import solved_event, vendor_fixture
from tracker import signing
from tracker.cli.dev import free_port
from tracker.config import ConfigError, load_settings
from tracker.ingest import apply as ingest
from tracker.store import Store, keys, log
from tracker.web.app import create_app

TABLE_CODES = {200, 202, 400, 401, 404, 413, 415, 422, 503}
ENVELOPE_KEYS = {"code", "status", "message", "errors"}
SIGNATURE_HEADERS = {"standard": "webhook-signature", "zendesk": "x-zendesk-webhook-signature"}
TIMESTAMP_HEADERS = {"standard": "webhook-timestamp", "zendesk": "x-zendesk-webhook-signature-timestamp"}


def fixture(source: str, name: str) -> dict[str, Any]:
    recorded = vendor_fixture(source, name)
    return {"body": recorded.json(), "headers": recorded.headers}


def solved_body(source: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Return a valid solved-ticket body and its delivery headers for a source."""
    data = fixture(source, "ticket.solved" if source == "standard" else "solved")
    return data["body"], data["headers"]


def stream_length(store: Store) -> int:
    """Count the entries of every shard of the event log."""
    return store.lag().length


def assert_envelope(response: Any, code: int) -> dict[str, Any]:
    """Check the product's error envelope and return it."""
    assert response.status_code == code, (response.status_code, response.data[:500])
    assert response.mimetype == "application/json", response.data[:500]
    body = response.get_json()
    assert isinstance(body, dict), response.data[:500]
    assert set(body) <= ENVELOPE_KEYS and {"code", "status", "message"} <= set(body), body
    assert body["code"] == code
    assert body["status"] == HTTPStatus(code).phrase
    assert isinstance(body["message"], str) and body["message"]
    if "errors" in body:
        assert isinstance(body["errors"], dict) and body["errors"]
    return body


# 202 accepted


@pytest.mark.parametrize("source", ["standard", "zendesk"])
def test_a_valid_signed_delivery_is_accepted_with_its_event_count(post_event, store, enqueued, source):
    body, headers = solved_body(source)
    response = post_event(source, body, headers=headers)
    assert response.status_code == 202, response.json
    assert response.json == {"status": "accepted", "events": 1}
    assert stream_length(store) == 1
    (shard,) = [s for s in range(keys.BUCKETS) if store.redis.xlen(keys.stream(s))]
    # The drain of the kick group of the shard the event went to.
    assert enqueued == [("tracker.drain_kicked", log.kick_group(shard))]


def test_a_standard_batch_is_accepted_with_the_number_of_events_it_carries(post_event, store):
    data = fixture("standard", "batch")
    response = post_event("standard", data["body"], headers=data["headers"])
    assert response.status_code == 202, response.json
    assert response.json == {"status": "accepted", "events": len(data["body"]["events"])}
    assert stream_length(store) == len(data["body"]["events"])


def test_a_body_of_exactly_one_mebibyte_is_still_accepted(post_event):
    raw = json.dumps(solved_event()).encode()
    raw += b" " * (1024 * 1024 - len(raw))
    assert len(raw) == 1024 * 1024
    response = post_event("standard", raw)
    assert response.status_code == 202, response.json


# 200 duplicate


@pytest.mark.parametrize("source", ["standard", "zendesk"])
def test_a_delivery_sent_ten_times_is_stored_once_and_applied_once(post_event, store, settings, source):
    body, headers = solved_body(source)
    answers = [post_event(source, body, headers=headers) for _ in range(10)]
    assert answers[0].status_code == 202
    assert [(a.status_code, a.json) for a in answers[1:]] == [(200, {"status": "duplicate"})] * 9
    assert stream_length(store) == 1
    assert ingest.drain(store, settings, "test")[0] == 1
    tickets = store.customer_ticket_keys("kari@example.no")
    assert len(tickets) == 1


def test_a_zendesk_retry_without_an_invocation_id_is_still_recognised_as_a_duplicate(post_event, store):
    body, _headers = solved_body("zendesk")
    first = post_event("zendesk", body)
    again = post_event("zendesk", body)
    assert first.status_code == 202, first.json
    assert (again.status_code, again.json) == (200, {"status": "duplicate"})
    assert stream_length(store) == 1


# Sources naming the delivery in a signed or verified header: a retry is a duplicate even when its body is refused.
EARLY_IDS = [("standard", "ticket.solved"), ("zendesk", "solved"),
             ("chatwoot", "conversation_status_changed__resolved"), ("jira", "issue_updated__resolved"),
             ("shopify", "orders_create"), ("woocommerce", "order.created")]


@pytest.mark.parametrize("broken", [b"{not json", b'{"type": "ticket.solved"}', b"[]"])
@pytest.mark.parametrize(("source", "name"), EARLY_IDS)
def test_a_repeat_of_a_known_delivery_is_a_duplicate_even_when_its_body_would_fail_validation(
        post_event, store, source, name, broken):
    recorded = fixture(source, name)
    assert post_event(source, recorded["body"], headers=recorded["headers"]).status_code == 202
    again = post_event(source, broken, headers=recorded["headers"])  # the same delivery id, re-signed
    assert (again.status_code, again.json) == (200, {"status": "duplicate"})
    assert stream_length(store) == 1


@pytest.mark.parametrize(("source", "name"), EARLY_IDS)
def test_an_unsigned_repeat_of_a_known_delivery_gets_401_and_learns_nothing(post_event, store, source, name):
    recorded = fixture(source, name)
    assert post_event(source, recorded["body"], headers=recorded["headers"]).status_code == 202
    assert_envelope(post_event(source, recorded["body"], headers=recorded["headers"], sign=False), 401)
    assert stream_length(store) == 1


def test_the_unsigned_woocommerce_ping_naming_a_known_delivery_is_still_only_ignored(post_event, store):
    recorded = fixture("woocommerce", "order.created")
    assert post_event("woocommerce", recorded["body"], headers=recorded["headers"]).status_code == 202
    ping = post_event("woocommerce", b"webhook_id=12", headers=recorded["headers"], sign=False,
                      content_type="application/x-www-form-urlencoded")
    assert (ping.status_code, ping.json) == (200, {"status": "ignored"})


# 200 ignored


@pytest.mark.parametrize("source", ["standard", "zendesk"])
def test_an_event_type_the_tracker_does_not_act_on_is_ignored_and_not_stored(post_event, store, source):
    data = fixture(source, "unknown")
    response = post_event(source, data["body"], headers=data["headers"])
    assert (response.status_code, response.json) == (200, {"status": "ignored"})
    assert stream_length(store) == 0


def test_a_zendesk_status_the_tracker_does_not_track_is_ignored(post_event, store):
    body, headers = solved_body("zendesk")
    body = {**body, "ticket": {**body["ticket"], "status": "Deleted"}}
    response = post_event("zendesk", body, headers=headers)
    assert (response.status_code, response.json) == (200, {"status": "ignored"})
    assert stream_length(store) == 0


# 400 / 422


@pytest.mark.parametrize("source", ["standard", "zendesk"])
@pytest.mark.parametrize("raw", [b"not json", b'{"ticket": ', b"\xff\xfe\x00garbage", b""])
def test_a_body_that_is_not_json_gets_400(post_event, store, source, raw):
    assert_envelope(post_event(source, raw), 400)
    assert stream_length(store) == 0


@pytest.mark.parametrize("source", ["standard", "shopify"])
@pytest.mark.parametrize("raw,why", [
    (b'{"ticket": ', "Expecting value at line 1, column 12"),
    (b'{"ticket": 1,}', "Expecting property name enclosed in double quotes at line 1, column 14"),
    (b'{"ticket": "\xff"}', "it is not UTF-8 text"),
    (b'{"ticket": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "it is nested too deeply"),
])
def test_a_body_that_is_not_json_is_said_why(post_event, store, source, raw, why):
    response = post_event(source, raw)
    assert_envelope(response, 400)
    assert response.json["message"] == f"The body is not valid JSON: {why}."
    assert stream_length(store) == 0


@pytest.mark.parametrize("source", ["standard", "zendesk"])
@pytest.mark.parametrize("raw", [b"[]", b'"solved"', b"42", b"null"])
def test_json_that_is_not_an_object_gets_422(post_event, store, source, raw):
    assert_envelope(post_event(source, raw), 422)
    assert stream_length(store) == 0


@pytest.mark.parametrize("source,name", [("standard", "ticket.solved__missing_ticket_id"),
                                         ("zendesk", "solved__missing_ticket_id")])
def test_a_missing_ticket_id_gets_422_naming_the_field(post_event, store, source, name):
    data = fixture(source, name)
    body = assert_envelope(post_event(source, data["body"], headers=data.get("headers")), 422)
    assert body["errors"]["ticket"]["id"], body
    assert stream_length(store) == 0


def test_a_standard_event_without_a_customer_gets_422_naming_customer(post_event):
    event = solved_event()
    del event["customer"]
    body = assert_envelope(post_event("standard", event), 422)
    assert "customer" in body["errors"]


def test_a_standard_event_with_a_bad_time_gets_422_naming_occurred_at(post_event):
    body = assert_envelope(post_event("standard", solved_event(at="yesterday")), 422)
    assert "occurred_at" in body["errors"]


def test_a_bad_event_inside_a_batch_is_named_by_its_position_and_nothing_is_stored(post_event, store):
    data = fixture("standard", "batch__missing_ticket_id")
    body = assert_envelope(post_event("standard", data["body"], headers=data["headers"]), 422)
    assert "events" in body["errors"], body
    assert stream_length(store) == 0


def test_a_zendesk_body_without_requester_gets_422_naming_requester(post_event):
    body, headers = solved_body("zendesk")
    body = {k: v for k, v in body.items() if k != "requester"}
    answer = assert_envelope(post_event("zendesk", body, headers=headers), 422)
    assert "requester" in answer["errors"]


# 401


def _secret_material(source: str, raw: bytes, headers: dict[str, str]) -> list[str]:
    """What a forger would love to read in a 401: the secret and the signature the server expected."""
    good, _ = signed(source, raw, headers=headers)
    material = [SECRETS[source], good[SIGNATURE_HEADERS[source]].removeprefix("v1,")]
    if source == "standard":
        material.append(base64.b64decode(SECRETS[source].removeprefix("whsec_")).decode())
    return material


@pytest.mark.parametrize("source", ["standard", "zendesk"])
@pytest.mark.parametrize("broken", ["missing signature", "missing timestamp", "wrong signature",
                                    "other secret", "body changed", "stale", "from the future"])
def test_a_request_whose_signature_does_not_hold_gets_401_without_helping_a_forger(
        client, store, source, broken):
    body, fixture_headers = solved_body(source)
    raw = json.dumps(body).encode()
    now = time.time()
    headers, _ = signed(source, raw, headers=fixture_headers, now=now)
    if broken == "missing signature":
        del headers[SIGNATURE_HEADERS[source]]
    elif broken == "missing timestamp":
        del headers[TIMESTAMP_HEADERS[source]]
    elif broken == "wrong signature":
        sig = headers[SIGNATURE_HEADERS[source]]
        headers[SIGNATURE_HEADERS[source]] = sig[:-4] + ("AAAA" if not sig.endswith("AAAA") else "BBBB")
    elif broken == "other secret":
        other = "whsec_" + base64.b64encode(b"x" * 32).decode() if source == "standard" else "other"
        headers, _ = signed(source, raw, secret=other, headers=fixture_headers, now=now)
    elif broken == "body changed":
        raw = raw.replace(b"Card declined", b"Card accepted")
    elif broken == "stale":
        headers, _ = signed(source, raw, headers=fixture_headers, now=now - 6 * 60)
    elif broken == "from the future":
        headers, _ = signed(source, raw, headers=fixture_headers, now=now + 6 * 60)
    response = client.post(f"/webhooks/{source}", data=raw,
                           headers={"Content-Type": "application/json", **headers})
    body_json = assert_envelope(response, 401)
    text = response.get_data(as_text=True) + json.dumps(dict(response.headers))
    for secret in _secret_material(source, raw, fixture_headers):
        assert secret not in text
    assert "errors" not in body_json
    assert stream_length(store) == 0


@pytest.mark.parametrize("source", ["standard", "zendesk"])
def test_a_timestamp_just_inside_the_five_minute_tolerance_is_accepted(post_event, source):
    body, headers = solved_body(source)
    response = post_event(source, body, headers=headers, now=time.time() - 4 * 60)
    assert response.status_code == 202, response.json


def test_one_valid_signature_among_several_is_enough_for_standard(client):
    raw = json.dumps(solved_event()).encode()
    headers, _ = signed("standard", raw)
    stranger = "v1," + base64.b64encode(b"x" * 32).decode()
    headers["webhook-signature"] = f"{stranger} v1a,abc {headers['webhook-signature']}"
    response = client.post("/webhooks/standard", data=raw,
                           headers={"Content-Type": "application/json", **headers})
    assert response.status_code == 202, response.json


def test_an_unpadded_whsec_secret_is_decoded_as_the_reference_library_decodes_it(settings, store):
    # 31 key bytes: their base64 ends in "=", which some senders' consoles leave off.
    unpadded = "whsec_" + base64.b64encode(b"unpadded-standard-webhooks-key!").decode().rstrip("=")
    secrets = {**settings.source_secrets, "standard": unpadded}
    app = create_app(dataclasses.replace(settings, source_secrets=secrets), store, enqueue=lambda task: None)
    raw = json.dumps(solved_event()).encode()
    headers, _ = signed("standard", raw, secret=unpadded)
    response = app.test_client().post("/webhooks/standard", data=raw,
                                      headers={"Content-Type": "application/json", **headers})
    assert response.status_code == 202, response.json


def test_the_published_standard_webhooks_test_vector_signs_and_verifies_through_our_signing_module():
    # From the reference library's tests (libraries/python/tests/test_webhooks.py, test_sign_function).
    secret, msg_id, stamp = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330
    body, expected = b'{"test": 2432232314}', "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert signing.sign(secret, msg_id, stamp, body) == expected
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(stamp), "webhook-signature": expected}
    signing.verify(secret, headers, body, now=stamp + 10)
    with pytest.raises(signing.InvalidSignature):
        signing.verify(secret, headers, body, now=stamp + 301)


# 404


@pytest.mark.parametrize("path", ["/webhooks/nosuchdesk", "/webhooks/STANDARD", "/webhooks/standard%00"])
def test_a_source_the_tracker_does_not_know_gets_404(client, store, path):
    raw = json.dumps(solved_event()).encode()
    headers, _ = signed("standard", raw)
    response = client.post(path, data=raw, headers={"Content-Type": "application/json", **headers})
    assert_envelope(response, 404)
    assert stream_length(store) == 0


@pytest.mark.parametrize("source", ["standard", "zendesk"])
def test_a_known_source_without_a_configured_secret_gets_404(env, store, source):
    without = {name: value for name, value in env.items() if name != f"TRACKER_SOURCE_{source.upper()}_SECRET"}
    app = create_app(load_settings(without), store, enqueue=lambda task: None)
    body, fixture_headers = solved_body(source)
    raw = json.dumps(body).encode()
    headers, _ = signed(source, raw, headers=fixture_headers)
    response = app.test_client().post(f"/webhooks/{source}", data=raw,
                                      headers={"Content-Type": "application/json", **headers})
    assert_envelope(response, 404)
    assert stream_length(store) == 0


# 413


@pytest.mark.parametrize("source", ["standard", "zendesk"])
def test_a_body_over_one_mebibyte_gets_413(post_event, store, source):
    body, headers = solved_body(source)
    raw = json.dumps(body).encode()
    raw += b" " * (1024 * 1024 + 1 - len(raw))
    assert_envelope(post_event(source, raw, headers=headers), 413)
    assert stream_length(store) == 0


def _chunks(raw: bytes, size: int = 65536) -> Iterator[bytes]:
    for start in range(0, len(raw), size):
        yield raw[start:start + size]


@pytest.mark.parametrize("pad,status", [(0, 202), (1024 * 1024 + 1, 413)], ids=["small", "over 1 MiB"])
def test_a_chunked_body_over_real_http_gets_413_when_over_one_mebibyte(live_server, store, pad, status):
    # Senders that stream (Transfer-Encoding: chunked) send no Content-Length to check up front.
    raw = json.dumps(solved_event()).encode()
    raw += b" " * max(0, pad - len(raw))
    headers, _ = signed("standard", raw)
    response = requests.post(f"{live_server}/webhooks/standard", data=_chunks(raw), timeout=30,
                             headers={"Content-Type": "application/json", **headers})
    assert response.status_code == status, response.text[:300]
    assert stream_length(store) == (1 if status == 202 else 0)


# 415


@pytest.mark.parametrize("source", ["standard", "zendesk"])
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "application/xml"])
def test_a_body_that_is_not_declared_json_gets_415(post_event, store, source, content_type):
    body, headers = solved_body(source)
    assert_envelope(post_event(source, body, headers=headers, content_type=content_type), 415)
    assert stream_length(store) == 0


def test_json_with_a_charset_parameter_is_still_json(post_event):
    response = post_event("standard", solved_event(), content_type="application/json; charset=utf-8")
    assert response.status_code == 202, response.json


# 503


@pytest.fixture
def unreachable_app(settings: Any) -> Any:
    """An app whose store points at a port nothing listens on; its kicks are recorded."""
    kicked: list[str] = []
    store = Store.from_url(f"redis://127.0.0.1:{free_port()}/0")
    app = create_app(settings, store, enqueue=kicked.append)
    app.kicked = kicked  # type: ignore[attr-defined]
    return app


@pytest.mark.parametrize("source", ["standard", "zendesk"])
def test_storage_unreachable_gets_503_with_retry_after_and_acknowledges_nothing(
        unreachable_app, post_event, store, source):
    body, fixture_headers = solved_body(source)
    raw = json.dumps(body).encode()
    headers, _ = signed(source, raw, headers=fixture_headers)
    response = unreachable_app.test_client().post(
        f"/webhooks/{source}", data=raw, headers={"Content-Type": "application/json", **headers})
    answer = assert_envelope(response, 503)
    assert answer.get("status") != "accepted"
    retry_after = response.headers.get("Retry-After", "")
    assert retry_after.isdigit() and int(retry_after) > 0, response.headers
    assert unreachable_app.kicked == []
    # The sender retries the same delivery once storage is back: it must be new, not a duplicate.
    again = post_event(source, body, headers=fixture_headers)
    assert (again.status_code, again.json) == (202, {"status": "accepted", "events": 1})


def test_storage_unreachable_still_rejects_a_bad_signature_first(unreachable_app):
    raw = json.dumps(solved_event()).encode()
    response = unreachable_app.test_client().post("/webhooks/standard", data=raw,
                                                  headers={"Content-Type": "application/json"})
    assert_envelope(response, 401)


def test_a_delivery_is_accepted_while_the_broker_is_down_and_waits_in_the_log(env, store):
    from workers.celery_app import create_celery, web_enqueue

    down = load_settings({**env, "TRACKER_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0"})
    client = create_app(down, store, enqueue=web_enqueue(create_celery(down))).test_client()
    raw = json.dumps(solved_event()).encode()
    headers, _ = signed("standard", raw)
    response = client.post("/webhooks/standard", data=raw, headers={"Content-Type": "application/json", **headers})
    assert (response.status_code, response.json) == (202, {"status": "accepted", "events": 1})
    assert stream_length(store) == 1  # beat's periodic drain applies it once the broker is back


def test_a_broker_that_accepts_and_never_answers_does_not_hold_the_delivery(env, store):
    from workers.celery_app import create_celery, web_enqueue

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # connections are accepted by the kernel and then never answered
    try:
        hung = load_settings({**env, "TRACKER_BROKER_URL": f"redis://127.0.0.1:{silent.getsockname()[1]}/0"})
        client = create_app(hung, store, enqueue=web_enqueue(create_celery(hung))).test_client()
        raw = json.dumps(solved_event()).encode()
        headers, _ = signed("standard", raw)
        # Without a socket timeout on the broker the kick waited for minutes (this test's pytest timeout).
        response = client.post("/webhooks/standard", data=raw,
                               headers={"Content-Type": "application/json", **headers})
        assert (response.status_code, response.json) == (202, {"status": "accepted", "events": 1})
        assert stream_length(store) == 1
    finally:
        silent.close()


# Malformed headers never make a 500


def _post_with(client: Any, source: str, raw: bytes, headers: Any) -> Any:
    return client.post(f"/webhooks/{source}", data=raw, headers=headers, content_type="application/json")


@pytest.mark.parametrize("source", ["standard", "zendesk"])
@pytest.mark.parametrize("value", ["v1,ÿñ€", "ÿ" * 40, "v1," + "A" * 65536, "", " ", "v1,", "v1,=",
                                   "sha256=\x01\x02", "v1,%%%%", "\t"])
def test_a_malformed_signature_header_gets_401_not_500(client, store, source, value):
    raw = json.dumps(solved_body(source)[0]).encode()
    headers, _ = signed(source, raw, headers=solved_body(source)[1])
    headers[SIGNATURE_HEADERS[source]] = value.replace("€", "e")  # header values are latin-1
    assert_envelope(_post_with(client, source, raw, headers), 401)
    assert stream_length(store) == 0


@pytest.mark.parametrize("source", ["standard", "zendesk"])
@pytest.mark.parametrize("stamp", ["yesterday", "1e9", "-5", "99999999999999999999999", "0x1f", "١٢٣",
                                   "2026-13-45T99:99:99Z", "9999-12-31T23:59:59-14:00",
                                   "0001-01-01T00:00:00+14:00",
                                   "nan", "inf", "NaN", "1700000000.5", " ", "ÿ"])
def test_a_garbage_timestamp_gets_401_not_500(client, store, source, stamp):
    raw = json.dumps(solved_body(source)[0]).encode()
    headers, _ = signed(source, raw, headers=solved_body(source)[1])
    headers[TIMESTAMP_HEADERS[source]] = stamp
    assert_envelope(_post_with(client, source, raw, headers), 401)
    assert stream_length(store) == 0


@pytest.mark.parametrize("source", ["standard", "zendesk"])
def test_a_huge_header_gets_a_table_answer_not_500(client, source):
    raw = json.dumps(solved_body(source)[0]).encode()
    headers, _ = signed(source, raw, headers=solved_body(source)[1])
    headers["x-padding"] = "p" * 200_000
    if source == "standard":
        headers["webhook-id"] = "m" * 100_000
    response = _post_with(client, source, raw, headers)
    assert response.status_code in TABLE_CODES - {503}, response.data[:300]
    if response.status_code >= 400:
        assert_envelope(response, response.status_code)


@pytest.mark.parametrize("source", ["standard", "zendesk"])
def test_duplicate_signature_headers_never_make_a_500(client, store, source):
    raw = json.dumps(solved_body(source)[0]).encode()
    headers, _ = signed(source, raw, headers=solved_body(source)[1])
    good = headers.pop(SIGNATURE_HEADERS[source])
    listed = [*headers.items(), (SIGNATURE_HEADERS[source], "v1,AAAA"), (SIGNATURE_HEADERS[source], good)]
    response = _post_with(client, source, raw, listed)
    assert response.status_code in (202, 401), response.data[:300]
    if response.status_code == 401:
        assert_envelope(response, 401)
        assert stream_length(store) == 0


def test_a_get_on_the_webhook_path_gets_the_envelope(client):
    response = client.get("/webhooks/standard")
    assert_envelope(response, 405)


# Anything at all: always a table code, always JSON


HEADER_TEXT = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF,
                                             blacklist_characters="\x7f"), max_size=120)
# Timestamps that look right, anywhere in the calendar and in any UTC offset.
ISO_TIMES = st.builds(
    lambda moment, offset: moment.replace(tzinfo=timezone(offset)).isoformat(),
    st.datetimes(), st.timedeltas(min_value=timedelta(hours=-23, minutes=-59),
                                  max_value=timedelta(hours=23, minutes=59)))
HEADER_VALUES = HEADER_TEXT | ISO_TIMES | st.integers(min_value=-10**12, max_value=10**13).map(str)
HEADER_NAMES = st.sampled_from(["webhook-id", "webhook-timestamp", "webhook-signature",
                                "x-zendesk-webhook-signature", "x-zendesk-webhook-signature-timestamp",
                                "x-zendesk-webhook-invocation-id", "content-encoding", "x-anything"])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20)


def _mutated(source: str) -> st.SearchStrategy[bytes]:
    """A valid body with one field replaced by an arbitrary JSON value."""
    body = solved_body(source)[0]

    def replace(choice: tuple[str, Any]) -> bytes:
        path, value = choice
        copy = json.loads(json.dumps(body))
        target = copy
        *parents, leaf = path.split(".")
        for part in parents:
            target = target[part]
        target[leaf] = value
        return json.dumps(copy).encode()

    paths = [top for top in body] + [f"{top}.{key}" for top, sub in body.items() if isinstance(sub, dict)
                                     for key in sub]
    return st.tuples(st.sampled_from(paths), JSON_VALUES).map(replace)


BODIES = {
    source: st.one_of(st.binary(max_size=300), JSON_VALUES.map(lambda v: json.dumps(v).encode()),
                      _mutated(source))
    for source in ("standard", "zendesk")
}
CONTENT_TYPES = st.one_of(
    st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain",
                     "multipart/form-data; boundary=x", "application/x-www-form-urlencoded", ""]),
    HEADER_TEXT)


@st.composite
def webhook_requests(draw: Any) -> tuple[str, bytes, str, list[tuple[str, str]], bool]:
    source = draw(st.sampled_from(["standard", "zendesk", "nosuchdesk"]))
    raw = draw(BODIES.get(source, BODIES["standard"]))
    content_type = draw(CONTENT_TYPES)
    headers = draw(st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=6))
    sign = draw(st.booleans())
    return source, raw, content_type, headers, sign


@hypothesis_settings(max_examples=200, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=webhook_requests())
def test_any_request_gets_a_table_answer_in_json_and_never_a_500(client, case):
    source, raw, content_type, headers, sign = case
    sent = list(headers)
    if sign and source != "nosuchdesk":
        good, _ = signed(source, raw, headers=dict(headers))
        sent = [(k, v) for k, v in sent if k.lower() not in good] + list(good.items())
    sent.append(("Content-Type", content_type))
    response = client.post(f"/webhooks/{source}", data=raw, headers=sent)
    assert response.status_code != 500, response.data[:500]
    assert response.status_code in TABLE_CODES - {503}, (response.status_code, response.data[:300])
    assert response.mimetype == "application/json", response.data[:300]
    body = response.get_json()
    if response.status_code >= 400:
        assert_envelope(response, response.status_code)
    elif response.status_code == 202:
        assert body["status"] == "accepted" and isinstance(body["events"], int) and body["events"] >= 1
    else:
        assert body in ({"status": "duplicate"}, {"status": "ignored"})


@pytest.mark.parametrize("at", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"])
def test_an_event_time_outside_the_calendar_in_utc_gets_422_not_500(post_event, store, at):
    body = assert_envelope(post_event("standard", solved_event(at=at)), 422)
    assert "occurred_at" in body["errors"], body
    zendesk, headers = solved_body("zendesk")
    zendesk = {**zendesk, "ticket": {**zendesk["ticket"], "updated_at": at}}
    body = assert_envelope(post_event("zendesk", zendesk, headers=headers), 422)
    assert "updated_at" in body["errors"].get("ticket", {}), body
    assert stream_length(store) == 0


# Where the vendors that send unix times carry them, and the fixture each is changed in (a resolved one).
UNIX_TIMES = [("chatwoot", "conversation_status_changed__resolved", ("updated_at",), 1),
              ("chatwoot", "conversation_resolved", ("timestamp",), 1),
              ("intercom", "conversation.admin.closed", ("data", "item", "updated_at"), 1),
              ("jira", "issue_updated__resolved", ("timestamp",), 1000)]


@pytest.mark.parametrize(("source", "fixture", "path", "unit"), UNIX_TIMES, ids=lambda v: str(v))
@pytest.mark.parametrize("seconds", [1e308, 2**70, -(2**70), -1, 7258118400, "99999999999999999999"])
def test_a_vendor_unix_time_no_event_may_carry_gets_422_naming_it_not_500(post_event, store, source, fixture, path,
                                                                          unit, seconds):
    found = vendor_fixture(source, fixture)
    body = found.json()
    target = body
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = seconds if isinstance(seconds, str) or seconds == 1e308 else seconds * unit
    response = post_event(source, body, headers=found.headers)
    errors = assert_envelope(response, 422)["errors"]
    for part in path:
        assert part in errors, (path, errors)
        errors = errors[part]
    assert errors == ["Must be a time between 1970 and 2200."]
    assert stream_length(store) == 0


# --- Standard Webhooks secrets are decoded as the reference library decodes them, or refused at start-up ---

KEY = b"standard-webhooks-key-of-32-byte"


@pytest.mark.parametrize("written", [
    "whsec_" + base64.b64encode(KEY[:31]).decode(),  # padded
    "whsec_" + base64.b64encode(KEY[:31]).decode().rstrip("="),  # padding left off, as some consoles show it
    base64.b64encode(KEY[:29]).decode().rstrip("="),  # bare and unpadded
], ids=["padded", "unpadded", "bare-unpadded"])
def test_a_standard_secret_accepted_at_start_up_verifies_what_the_reference_library_signs(env, store, written):
    settings = load_settings({**env, "TRACKER_SOURCE_STANDARD_SECRET": written})
    app = create_app(settings, store, enqueue=lambda task: None)
    raw = json.dumps(solved_event()).encode()
    headers, _ = signed("standard", raw, secret=written)
    response = app.test_client().post("/webhooks/standard", data=raw,
                                      headers={"Content-Type": "application/json", **headers})
    assert response.status_code == 202, response.json


@pytest.mark.parametrize("written", [
    "whsec_not base64 at all!", "my-shared-secret", "whsec_abcde", "whsec_YWJj-ZGVm_Z2hp", "whsec_", "whsec_====",
    "whsec_YWJjZA=x",
], ids=["spaces", "plain-text", "impossible-length", "url-safe-alphabet", "empty", "padding-only", "bad-padding"])
def test_a_standard_secret_that_does_not_decode_is_refused_at_start_up_naming_the_variable(env, written):
    with pytest.raises(ConfigError) as refused:
        load_settings({**env, "TRACKER_SOURCE_STANDARD_SECRET": written})
    message = str(refused.value)
    assert message.startswith("TRACKER_SOURCE_STANDARD_SECRET ") and "\n" not in message
    secret = written.removeprefix("whsec_")
    assert not secret or secret not in message  # a secret is never echoed


# --- two events of one order at the same time are ordered by what they mean -------------------------------

def _order_event(kind: str, event_id: str, at: str = "2026-11-20T10:00:00Z") -> dict[str, Any]:
    return {"type": kind, "id": event_id, "occurred_at": at, "customer": {"email": "kari@example.no"},
            "order": {"id": "O-1", "total": "149.00", "currency": "NOK"}}


@pytest.mark.parametrize("cancel_first", [False, True], ids=["created-then-cancelled", "cancelled-then-created"])
def test_a_shopify_order_created_and_cancelled_in_the_same_second_is_not_counted(post_event, store, settings,
                                                                                 cancel_first):
    created, cancelled = fixture("shopify", "orders_create"), fixture("shopify", "orders_cancelled")
    cancelled["body"]["cancelled_at"] = cancelled["body"]["created_at"]  # cancelled the second it was placed
    for delivery in ([cancelled, created] if cancel_first else [created, cancelled]):
        assert post_event("shopify", delivery["body"], headers=delivery["headers"]).status_code == 202
        ingest.drain(store, settings, "test")
    assert store.orders_summary("kari@example.no").count == 0
    assert store.redis.hget(keys.order("shopify:820982911946154508"), "status") == "cancelled"


@pytest.mark.parametrize(("earlier", "later"), [
    ("order.created", "order.fulfilled"), ("order.fulfilled", "order.cancelled"),
    ("order.created", "order.refunded"), ("order.refunded", "order.cancelled"),
])
@pytest.mark.parametrize("arrival", ["in-order", "reversed"])
def test_order_events_with_one_timestamp_leave_the_status_the_later_step_sets(post_event, store, settings, earlier,
                                                                             later, arrival):
    # Event ids chosen so that comparing them as strings would pick the wrong one.
    events = [_order_event(earlier, "zz-" + earlier), _order_event(later, "aa-" + later)]
    for event in events if arrival == "in-order" else events[::-1]:
        assert post_event("standard", event).status_code == 202
        ingest.drain(store, settings, "test")
    assert store.redis.hget(keys.order("standard:O-1"), "status") == later.removeprefix("order.")


# --- times ahead and fractional ratings: refused at the door, never counted -------------------------------------

def _in(hours: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize("occurred_at", ["2199-06-01T00:00:00Z", "2150-01-01T00:00:00Z", "in 25 hours"])
def test_an_event_dated_more_than_a_day_ahead_gets_422_naming_occurred_at(post_event, store, occurred_at):
    # An answer's time weighs it in the decayed score: one from 2199 would outweigh every real answer for ever.
    body = {"type": "survey.answered", "id": "far-1", "ticket": {"id": "T-far"},
            "occurred_at": _in(25) if occurred_at == "in 25 hours" else occurred_at,
            "customer": {"email": "far@example.no"}, "answer": {"rating": 1, "scale": "csat5"}}
    errors = assert_envelope(post_event("standard", body), 422)["errors"]
    assert errors == {"occurred_at": ["Must not be more than a day in the future (is the sender's clock or time zone "
                                      "wrong?)."]}
    assert stream_length(store) == 0


def test_an_event_a_few_hours_ahead_a_sender_clock_or_time_zone_off_is_taken(post_event, store):
    response = post_event("standard", solved_event(ticket="T-ahead", at=_in(14)))
    assert response.status_code == 202, response.json
    assert stream_length(store) == 1


@pytest.mark.parametrize("rating", [4.9, 5.99, 0.5, True])
def test_a_fractional_rating_gets_422_not_cut_to_a_whole_one(post_event, store, rating):
    body = {"type": "survey.answered", "id": "frac-1", "occurred_at": _in(-1), "ticket": {"id": "T-frac"},
            "customer": {"email": "frac@example.no"}, "answer": {"rating": rating, "scale": "csat5"}}
    errors = assert_envelope(post_event("standard", body), 422)["errors"]
    assert errors == {"answer": {"rating": ["Not a valid integer."]}}
    assert stream_length(store) == 0


@pytest.mark.parametrize("rating", [4, 4.0, "4"])
def test_a_whole_rating_written_as_a_float_or_a_string_is_taken(post_event, store, rating):
    body = {"type": "survey.answered", "id": "whole-1", "occurred_at": _in(-1), "ticket": {"id": "T-whole"},
            "customer": {"email": "whole@example.no"}, "answer": {"rating": rating, "scale": "csat5"}}
    assert post_event("standard", body).status_code == 202
    assert stream_length(store) == 1
