"""The source adapters: every fixture parses to what it expects, and every signature scheme holds."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.signing import SECRETS, SIGNATURE_HEADERS, TIMESTAMP_HEADERS, signed
from tracker.events import iso_from_ms
from webhooks.adapters import ADAPTERS
from webhooks.adapters.base import Delivery, IgnoredEvent, Inbound, PayloadError, SignatureError

FIXTURES = Path(__file__).parent / "fixtures"
NOW = 1_795_000_000.0
FIXTURE_FILES = sorted(FIXTURES.glob("*/*.json"))


def fixture_id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def load_fixture(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text("utf-8"))
    assert set(data) <= {"headers", "body", "expect", "content_type"}, path
    return data


def body_bytes(fixture: dict[str, Any]) -> bytes:
    body = fixture["body"]
    return body.encode("utf-8") if isinstance(body, str) else json.dumps(body).encode("utf-8")


def signed_inbound(source: str, body: bytes, fixture_headers: dict[str, str] | None = None,
                   now: float = NOW) -> Inbound:
    headers, query = signed(source, body, SECRETS[source], now=now, headers=fixture_headers)
    return Inbound(body=body, headers=headers, query=query, received_at=NOW)


def first_fixture(source: str) -> dict[str, Any]:
    """Return the source's main accepted fixture: a plain solved (or else the first accepted) event."""
    paths = sorted((FIXTURES / source).glob("*.json"),
                   key=lambda p: ("solved" not in p.stem, "create" not in p.stem, "__" in p.stem, p.stem))
    for path in paths:
        data = load_fixture(path)
        expect = data["expect"]
        if isinstance(expect, list) or ("error" not in expect and not expect.get("ignored")):
            return data
    raise AssertionError(f"{source} has no accepted fixture")


# What each `expect` key reads from a normalised record.
READERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "type": lambda r: r["type"],
    "ticket": lambda r: r["ticket"]["id"],
    "order": lambda r: r["order"]["id"],
    "status": lambda r: (r.get("ticket") or r.get("order") or {}).get("status"),
    "email": lambda r: r["customer"].get("email"),
    "customer_id": lambda r: r["customer"].get("id"),
    "name": lambda r: r["customer"].get("name"),
    "locale": lambda r: r["customer"].get("locale"),
    "agent": lambda r: (r["ticket"].get("agent") or {}).get("id"),
    "agent_name": lambda r: (r["ticket"].get("agent") or {}).get("name"),
    "agent_email": lambda r: (r["ticket"].get("agent") or {}).get("email"),
    "team": lambda r: r["ticket"].get("team"),
    "brand": lambda r: r["ticket"].get("brand"),
    "channel": lambda r: r["ticket"].get("channel"),
    "subject": lambda r: r["ticket"].get("subject"),
    "tags": lambda r: r["ticket"].get("tags", []),
    "total": lambda r: r["order"]["total"],
    "currency": lambda r: r["order"]["currency"],
    "at": lambda r: iso_from_ms(r["at"]),
    "event_id": lambda r: r["id"],
}


def test_every_adapter_has_fixtures_and_every_fixture_directory_has_an_adapter() -> None:
    directories = {path.name for path in FIXTURES.iterdir() if path.is_dir()}
    with_files = {path.parent.name for path in FIXTURE_FILES}
    assert set(ADAPTERS) == directories == with_files
    for source in ADAPTERS:
        assert (FIXTURES / source / "unknown.json").exists(), f"{source} has no unknown-event fixture"
        first_fixture(source)


# The event types each source can produce; every one needs a fixture that produces it.
SUPPORTED = {
    "standard": {"ticket.created", "ticket.updated", "ticket.solved", "ticket.reopened", "ticket.closed",
                 "order.created", "order.fulfilled", "order.cancelled", "order.refunded"},
    "zendesk": {"ticket.created", "ticket.updated", "ticket.solved", "ticket.reopened", "ticket.closed"},
    "freshdesk": {"ticket.updated", "ticket.solved", "ticket.closed"},
    "helpscout": {"ticket.created", "ticket.updated", "ticket.solved"},
    "intercom": {"ticket.updated", "ticket.solved", "ticket.reopened"},
    "chatwoot": {"ticket.updated", "ticket.solved", "ticket.reopened"},
    "jira": {"ticket.created", "ticket.solved", "ticket.reopened"},
    "gorgias": {"ticket.updated", "ticket.solved"},
    "shopify": {"order.created", "order.fulfilled", "order.cancelled", "order.refunded"},
    "woocommerce": {"order.created", "order.fulfilled", "order.cancelled", "order.refunded"},
}


def test_every_supported_event_of_every_source_has_a_fixture() -> None:
    produced: dict[str, set[str]] = {source: set() for source in ADAPTERS}
    for path in FIXTURE_FILES:
        expect = load_fixture(path)["expect"]
        for item in expect if isinstance(expect, list) else [expect]:
            if "type" in item:
                produced[path.parent.name].add(item["type"])
    assert produced == SUPPORTED


@pytest.mark.parametrize("source", sorted(ADAPTERS))
def test_every_adapter_exposes_the_adapter_interface(source: str) -> None:
    module = ADAPTERS[source]
    assert module.NAME == source
    assert isinstance(module.CONTENT_TYPES, tuple)
    assert isinstance(module.DOCS, str) and module.DOCS.strip() and "\n" not in module.DOCS
    assert callable(module.verify) and callable(module.parse)
    assert source in SECRETS and source in SIGNATURE_HEADERS


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=fixture_id)
def test_every_fixture_parses_to_what_it_expects(path: Path) -> None:
    source, fixture = path.parent.name, load_fixture(path)
    expect = fixture["expect"]
    inbound = signed_inbound(source, body_bytes(fixture), fixture.get("headers"))
    ADAPTERS[source].verify(inbound, SECRETS[source])
    if isinstance(expect, dict) and expect.get("ignored"):
        with pytest.raises(IgnoredEvent):
            ADAPTERS[source].parse(inbound)
        return
    if isinstance(expect, dict) and "error" in expect:
        with pytest.raises(PayloadError) as caught:
            ADAPTERS[source].parse(inbound)
        assert caught.value.status == expect["error"]
        assert caught.value.errors == expect["errors"]
        return
    content_type = fixture.get("content_type", "application/json")
    assert not ADAPTERS[source].CONTENT_TYPES or content_type in ADAPTERS[source].CONTENT_TYPES
    delivery = ADAPTERS[source].parse(inbound)
    assert_delivery(source, delivery, expect if isinstance(expect, list) else [expect])


def assert_delivery(source: str, delivery: Delivery, expected: list[dict[str, Any]]) -> None:
    assert delivery.id.startswith(f"{source}:") and len(delivery.id) <= 250
    assert len(delivery.events) == len(expected)
    for record, expect in zip(delivery.events, expected, strict=True):
        assert record["source"] == source
        json.dumps(record)  # the event log stores JSON
        for key, value in expect.items():
            if key == "delivery":
                assert delivery.id == value
            elif key == "delivery_is_fallback":
                assert re.fullmatch(rf"{source}:[0-9a-f]{{32}}", delivery.id)
            else:
                assert READERS[key](record) == value, key


@pytest.mark.parametrize("source", sorted(ADAPTERS))
def test_a_redelivered_request_keeps_its_delivery_id_and_event_ids(source: str) -> None:
    fixture = first_fixture(source)
    body = body_bytes(fixture)
    first = ADAPTERS[source].parse(signed_inbound(source, body, fixture.get("headers")))
    again = ADAPTERS[source].parse(signed_inbound(source, body, fixture.get("headers"), now=NOW + 60))
    assert first == again


@pytest.mark.parametrize("source", sorted(ADAPTERS))
@pytest.mark.parametrize("body", [b"not json", b"{\"ticket\": ", b"\xff\xfe"],
                         ids=["text", "truncated", "binary"])
def test_a_body_that_is_not_json_is_a_400(source: str, body: bytes) -> None:
    with pytest.raises(PayloadError) as caught:
        ADAPTERS[source].parse(signed_inbound(source, body, first_fixture(source).get("headers")))
    assert caught.value.status == 400


@pytest.mark.parametrize("source", sorted(ADAPTERS))
@pytest.mark.parametrize("body", [b"[]", b"\"text\"", b"42", b"null"],
                         ids=["array", "string", "number", "null"])
def test_a_json_body_that_is_not_an_object_is_a_422(source: str, body: bytes) -> None:
    with pytest.raises(PayloadError) as caught:
        ADAPTERS[source].parse(signed_inbound(source, body, first_fixture(source).get("headers")))
    assert caught.value.status == 422


# --- signatures: start from a valid signed request and break one thing each ---------------------------

Breaker = Callable[[str, bytes, dict[str, str], dict[str, str]], tuple[bytes, dict[str, str], dict[str, str]]]


def _flip_body(source: str, body: bytes, headers: dict[str, str], query: dict[str, str]):
    return body[:-2] + bytes([body[-2] ^ 1]) + body[-1:], headers, query


def _drop_signature(source: str, body: bytes, headers: dict[str, str], query: dict[str, str]):
    headers.pop(SIGNATURE_HEADERS[source] or "", None)
    query.pop("token", None)
    return body, headers, query


def _set_signature(value: str) -> Breaker:
    def breaker(source: str, body: bytes, headers: dict[str, str], query: dict[str, str]):
        if SIGNATURE_HEADERS[source]:
            headers[SIGNATURE_HEADERS[source] or ""] = value
        else:
            query["token"] = value
        return body, headers, query
    return breaker


def _truncate_signature(source: str, body: bytes, headers: dict[str, str], query: dict[str, str]):
    name = SIGNATURE_HEADERS[source]
    if name:
        headers[name] = headers[name][:-4]
    else:
        query["token"] = query["token"][:-4]
    return body, headers, query


BREAKERS: dict[str, Breaker] = {
    "a flipped body byte": _flip_body,
    "a missing signature": _drop_signature,
    "an empty signature": _set_signature(""),
    "a garbage signature": _set_signature("garbage"),
    "a non-ascii signature": _set_signature("sïgnätur€"),
    "a truncated signature": _truncate_signature,
}


@pytest.mark.parametrize("source", sorted(ADAPTERS))
def test_a_request_signed_the_vendor_way_verifies(source: str) -> None:
    fixture = first_fixture(source)
    inbound = signed_inbound(source, body_bytes(fixture), fixture.get("headers"))
    ADAPTERS[source].verify(inbound, SECRETS[source])


# A shared token authenticates the sender but not the body, so body tampering applies to signed sources only.
BROKEN = [(source, breakage) for source in sorted(ADAPTERS) for breakage in sorted(BREAKERS)
          if SIGNATURE_HEADERS[source] or breakage != "a flipped body byte"]


@pytest.mark.parametrize(("source", "breakage"), BROKEN)
def test_a_request_with_one_thing_broken_is_rejected(source: str, breakage: str) -> None:
    fixture = first_fixture(source)
    body = body_bytes(fixture)
    headers, query = signed(source, body, SECRETS[source], now=NOW, headers=fixture.get("headers"))
    body, headers, query = BREAKERS[breakage](source, body, dict(headers), dict(query))
    with pytest.raises(SignatureError):
        ADAPTERS[source].verify(Inbound(body, headers, query, NOW), SECRETS[source])


@pytest.mark.parametrize("source", sorted(ADAPTERS))
def test_a_request_signed_with_another_secret_is_rejected(source: str) -> None:
    fixture = first_fixture(source)
    body = body_bytes(fixture)
    other = "whsec_b3RoZXIta2V5" if source == "standard" else "other-secret"
    headers, query = signed(source, body, other, now=NOW, headers=fixture.get("headers"))
    with pytest.raises(SignatureError):
        ADAPTERS[source].verify(Inbound(body, headers, query, NOW), SECRETS[source])


TIMED = sorted(source for source in ADAPTERS if TIMESTAMP_HEADERS.get(source))


@pytest.mark.parametrize("offset", [-301, 301, -86_400, 10**9],
                         ids=["stale", "future", "a-day-old", "far-future"])
@pytest.mark.parametrize("source", TIMED)
def test_a_signed_timestamp_outside_five_minutes_is_rejected(source: str, offset: int) -> None:
    fixture = first_fixture(source)
    with pytest.raises(SignatureError):
        ADAPTERS[source].verify(signed_inbound(source, body_bytes(fixture), fixture.get("headers"),
                                               now=NOW + offset), SECRETS[source])


@pytest.mark.parametrize("offset", [-299, 299])
@pytest.mark.parametrize("source", TIMED)
def test_a_signed_timestamp_within_five_minutes_is_accepted(source: str, offset: int) -> None:
    fixture = first_fixture(source)
    inbound = signed_inbound(source, body_bytes(fixture), fixture.get("headers"), now=NOW + offset)
    ADAPTERS[source].verify(inbound, SECRETS[source])


@pytest.mark.parametrize("value", ["", "yesterday", "1.5e9", "١٧٩٥٠٠٠٠٠٠", "-1795000000"])
@pytest.mark.parametrize("source", TIMED)
def test_a_malformed_timestamp_is_rejected(source: str, value: str) -> None:
    fixture = first_fixture(source)
    inbound = signed_inbound(source, body_bytes(fixture), fixture.get("headers"))
    headers = {**inbound.headers, TIMESTAMP_HEADERS[source] or "": value}
    with pytest.raises(SignatureError):
        ADAPTERS[source].verify(Inbound(inbound.body, headers, inbound.query, NOW), SECRETS[source])


@pytest.mark.parametrize("source", TIMED)
def test_a_replayed_signature_with_a_fresh_timestamp_is_rejected(source: str) -> None:
    fixture = first_fixture(source)
    old = signed_inbound(source, body_bytes(fixture), fixture.get("headers"), now=NOW - 600)
    stamp = TIMESTAMP_HEADERS[source] or ""
    fresh = signed_inbound(source, body_bytes(fixture), fixture.get("headers"))
    headers = {**old.headers, stamp: fresh.headers[stamp]}
    with pytest.raises(SignatureError):
        ADAPTERS[source].verify(Inbound(old.body, headers, old.query, NOW), SECRETS[source])


# --- Standard Webhooks -----------------------------------------------------------------------------------

def test_the_published_standard_webhooks_test_vector_verifies() -> None:
    # From standard-webhooks/libraries/python/tests/test_webhooks.py (test_sign_function).
    inbound = Inbound(body=b'{"test": 2432232314}', received_at=1614265330 + 10, headers={
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek", "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="})
    ADAPTERS["standard"].verify(inbound, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    ADAPTERS["standard"].verify(inbound, "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    with pytest.raises(SignatureError):
        ADAPTERS["standard"].verify(inbound, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSW")


def _standard_request(signatures: list[str]) -> Inbound:
    fixture = first_fixture("standard")
    inbound = signed_inbound("standard", body_bytes(fixture), fixture.get("headers"))
    valid = inbound.headers["webhook-signature"]
    header = " ".join(valid if s == "VALID" else s for s in signatures)
    return Inbound(inbound.body, {**inbound.headers, "webhook-signature": header}, {}, NOW)


def test_standard_accepts_a_valid_signature_among_several() -> None:
    request = _standard_request(["v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
                                 "v1a,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=", "VALID"])
    ADAPTERS["standard"].verify(request, SECRETS["standard"])


def test_standard_rejects_several_signatures_when_none_is_valid() -> None:
    request = _standard_request(["v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=", "v2,abc", "v1,"])
    with pytest.raises(SignatureError):
        ADAPTERS["standard"].verify(request, SECRETS["standard"])


def test_standard_rejects_a_valid_signature_under_another_version() -> None:
    request = _standard_request(["VALID"])
    renamed = request.headers["webhook-signature"].replace("v1,", "v2,")
    headers = {**request.headers, "webhook-signature": renamed}
    with pytest.raises(SignatureError):
        ADAPTERS["standard"].verify(Inbound(request.body, headers, {}, NOW), SECRETS["standard"])


def test_standard_rejects_a_request_whose_message_id_was_changed() -> None:
    request = _standard_request(["VALID"])
    headers = {**request.headers, "webhook-id": "msg_other"}
    with pytest.raises(SignatureError):
        ADAPTERS["standard"].verify(Inbound(request.body, headers, {}, NOW), SECRETS["standard"])


def test_standard_accepts_a_plain_secret_without_the_whsec_prefix() -> None:
    body = b'{"hello": 1}'
    raw = "not base64 at all!"
    digest = base64.b64encode(hmac.new(raw.encode(), b"msg_1.%d." % NOW + body, "sha256").digest())
    inbound = Inbound(body, {"webhook-id": "msg_1", "webhook-timestamp": str(int(NOW)),
                             "webhook-signature": "v1," + digest.decode()}, {}, NOW)
    ADAPTERS["standard"].verify(inbound, raw)


def test_standard_rejects_a_batch_of_more_than_a_hundred_events() -> None:
    event = first_fixture("standard")["body"]
    body = json.dumps({"events": [event] * 101}).encode()
    with pytest.raises(PayloadError) as caught:
        ADAPTERS["standard"].parse(signed_inbound("standard", body))
    assert caught.value.status == 422 and "events" in caught.value.errors


def test_standard_rejects_an_empty_batch() -> None:
    with pytest.raises(PayloadError) as caught:
        ADAPTERS["standard"].parse(signed_inbound("standard", b'{"events": []}'))
    assert caught.value.errors == {"events": ["Must hold 1 to 100 events."]}


def test_standard_rejects_an_event_with_fields_it_does_not_know() -> None:
    event = {**first_fixture("standard")["body"], "priority": "high"}
    with pytest.raises(PayloadError) as caught:
        ADAPTERS["standard"].parse(signed_inbound("standard", json.dumps(event).encode()))
    assert "priority" in caught.value.errors


# --- Zendesk -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("rendered", "code"), [
    ("English", "en"), ("English (United States)", "en"), ("Norwegian", "nb"), ("Norsk (bokmål)", "nb"),
    ("Norsk (nynorsk)", "nn"), ("Norwegian Nynorsk", "nn"), ("Svenska", "sv"), ("Danish", "da"),
    ("Deutsch", "de"), ("Français", "fr"), ("Español", "es"), ("Nederlands", "nl"), ("pt-BR", "pt-br"),
    ("fi", "fi"), ("", None), ("Klingon", None),
])
def test_zendesk_language_names_become_locale_codes(rendered: str, code: str | None) -> None:
    assert ADAPTERS["zendesk"].language_code(rendered) == code


def test_zendesk_accepts_a_signature_over_a_timestamp_with_an_offset() -> None:
    body = body_bytes(first_fixture("zendesk"))
    stamp = "2026-11-18T13:06:40+02:00"  # NOW (11:06:40Z) in another zone
    signature = base64.b64encode(hmac.new(SECRETS["zendesk"].encode(), stamp.encode() + body,
                                          hashlib.sha256).digest()).decode()
    inbound = Inbound(body, {"x-zendesk-webhook-signature": signature,
                             "x-zendesk-webhook-signature-timestamp": stamp}, {}, NOW)
    ADAPTERS["zendesk"].verify(inbound, SECRETS["zendesk"])


def test_zendesk_derives_the_event_id_from_ticket_status_and_time() -> None:
    fixture = first_fixture("zendesk")
    record = ADAPTERS["zendesk"].parse(signed_inbound("zendesk", body_bytes(fixture))).events[0]
    other = json.loads(json.dumps(fixture["body"]))
    other["ticket"]["updated_at"] = "2026-11-22T10:00:01Z"
    moved = ADAPTERS["zendesk"].parse(signed_inbound("zendesk", json.dumps(other).encode())).events[0]
    assert record["id"] != moved["id"] and "1001" in record["id"] and "solved" in record["id"]


def test_zendesk_ignores_a_status_it_does_not_track() -> None:
    body = json.loads(json.dumps(first_fixture("zendesk")["body"]))
    body["ticket"]["status"] = "Deleted"
    with pytest.raises(IgnoredEvent):
        ADAPTERS["zendesk"].parse(signed_inbound("zendesk", json.dumps(body).encode()))


# --- shared tokens (vendors that sign nothing) ----------------------------------------------------------

TOKENED = sorted(source for source in ADAPTERS if SIGNATURE_HEADERS[source] is None)


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize("source", TOKENED)
def test_a_token_source_accepts_basic_auth_whose_password_is_the_secret(source: str) -> None:
    inbound = Inbound(b"{}", {"authorization": _basic("freshdesk", SECRETS[source])}, {}, NOW)
    ADAPTERS[source].verify(inbound, SECRETS[source])


@pytest.mark.parametrize("authorization",
                         [_basic("admin", "wrong"), "Basic !!!not-base64", "Bearer x", "Basic "])
@pytest.mark.parametrize("source", TOKENED)
def test_a_token_source_rejects_other_credentials(source: str, authorization: str) -> None:
    with pytest.raises(SignatureError):
        ADAPTERS[source].verify(Inbound(b"{}", {"authorization": authorization}, {}, NOW), SECRETS[source])


def test_chatwoot_accepts_the_shared_token_from_installs_that_do_not_sign() -> None:
    body = body_bytes(first_fixture("chatwoot"))
    ADAPTERS["chatwoot"].verify(Inbound(body, {}, {"token": SECRETS["chatwoot"]}, NOW), SECRETS["chatwoot"])
    with pytest.raises(SignatureError):
        ADAPTERS["chatwoot"].verify(Inbound(body, {}, {"token": "guess"}, NOW), SECRETS["chatwoot"])


# --- WooCommerce's creation ping --------------------------------------------------------------------------

def test_woocommerce_lets_the_unsigned_creation_ping_through_and_ignores_it() -> None:
    inbound = Inbound(b"webhook_id=12", {"content-type": "application/x-www-form-urlencoded"}, {}, NOW)
    ADAPTERS["woocommerce"].verify(inbound, SECRETS["woocommerce"])
    with pytest.raises(IgnoredEvent):
        ADAPTERS["woocommerce"].parse(inbound)


@pytest.mark.parametrize("body", [b"webhook_id=12&status=completed", b"webhook_id=x", b'{"webhook_id": 12}'])
def test_woocommerce_rejects_an_unsigned_body_that_only_resembles_the_ping(body: bytes) -> None:
    with pytest.raises(SignatureError):
        ADAPTERS["woocommerce"].verify(Inbound(body, {}, {}, NOW), SECRETS["woocommerce"])


# --- signature header formats -------------------------------------------------------------------------

@pytest.mark.parametrize(("source", "prefix"),
                         [("intercom", "sha1="), ("jira", "sha256="), ("chatwoot", "sha256=")])
def test_a_hex_signature_under_another_algorithm_prefix_is_rejected(source: str, prefix: str) -> None:
    fixture = first_fixture(source)
    inbound = signed_inbound(source, body_bytes(fixture), fixture.get("headers"))
    name = SIGNATURE_HEADERS[source] or ""
    swapped = inbound.headers[name].replace(prefix, "sha512=" if prefix == "sha256=" else "md5=")
    with pytest.raises(SignatureError):
        ADAPTERS[source].verify(Inbound(inbound.body, {**inbound.headers, name: swapped}, {}, NOW),
                                SECRETS[source])


def test_shopify_refund_counts_only_money_actually_paid_back() -> None:
    fixture = json.loads((FIXTURES / "shopify" / "refunds_create.json").read_text())
    inbound = signed_inbound("shopify", body_bytes(fixture), fixture["headers"])
    record = ADAPTERS["shopify"].parse(inbound).events[0]
    assert record["order"]["total"] == "149.00"  # the failed second transaction is not counted
