"""GDPR erasure: afterwards no key or value in Redis names the customer, and every aggregate is exact."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.support import drain, inject_log_entry, send_all, solved_event, survey_link, tracker, vendor_fixture
from tracker.model import COUNTS, SUMS
from tracker.privacy.erase import erase_customer, log_query
from tracker.scores.cards import customer_card
from tracker.scores.rebuild import compute_aggregates
from tracker.store import keys
from tracker.surveys.optout import opt_out

EMAIL = "erase.me@example.no"
OTHER = "keep@example.no"
# Everything that identifies the erased customer; none of it may survive in any key or value.
TRACES = (EMAIL, "Eirik Slettmeg", "Slettmeg", "cust-er-4471", "564738291001", "564738291002", "564738299999",
          "918273645501", "918273645502", "T-ER-1", "T-ER-3", "O-ER-BAD", "Please forget me")


def _iso(offset: float = 0) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + offset))


def _fixture(source: str, name: str) -> dict[str, Any]:
    recorded = vendor_fixture(source, name)
    return {"body": recorded.json(), "headers": recorded.headers}


def _shopify_order() -> tuple[dict[str, Any], dict[str, str]]:
    fixture = _fixture("shopify", "orders_create")
    text = json.dumps(fixture["body"]).replace("kari@example.no", "Erase.Me@Example.no")
    body = json.loads(text.replace("820982911946154508", "918273645501").replace("115310627314723954", "564738291001"))
    for person in (body["customer"], body.get("billing_address") or {}, body.get("shipping_address") or {}):
        if "first_name" in person:
            person.update(first_name="Eirik", last_name="Slettmeg")
    return body, fixture["headers"]


def _zendesk_solved(at: str) -> tuple[dict[str, Any], dict[str, str]]:
    fixture = _fixture("zendesk", "solved")
    body = fixture["body"]
    body["ticket"].update(id="918273645502", updated_at=at)
    body["requester"].update(id="564738291002", email="erase.me@EXAMPLE.no", name="Eirik Slettmeg")
    return body, {**fixture["headers"], "x-zendesk-webhook-invocation-id": "er-inv-1"}


def _standard(ticket: str, email: str, customer_id: str, at: str, **extra: Any) -> dict[str, Any]:
    event = solved_event(ticket=ticket, email_address=email, at=at, **extra)
    event["customer"].update(id=customer_id, name="Eirik Slettmeg" if email == EMAIL else "Kim Keep")
    return event


@pytest.fixture
def history(post_event: Any, store: Any, settings: Any, smtp: Any, client: Any) -> dict[str, Any]:
    """Two customers served by the same agent and team; the first has a footprint in every corner."""
    assert post_event("standard", _standard("T-ER-1", EMAIL, "cust-er-4471", _iso(-120))).status_code == 202
    assert post_event("standard", _standard("T-KEEP-1", OTHER, "c-keep", _iso(-90))).status_code == 202
    zendesk, headers = _zendesk_solved(_iso(-60))
    assert post_event("zendesk", zendesk, headers=headers).status_code == 202
    order, headers = _shopify_order()
    assert post_event("shopify", order, headers=headers).status_code == 202
    # An event that can never apply, parked with the customer's email in it.
    inject_log_entry(store, json.dumps({
        "type": "order.created", "source": "standard", "id": "evt-er-bad", "at": 1, "customer": {"email": EMAIL},
        "order": {"id": "O-ER-BAD", "total": "lots", "currency": "NOK", "status": "created"}}))
    drain(store, settings)
    outcomes = send_all(store, settings)
    assert sorted(o.status for o in outcomes) == ["sent", "sent", "skipped"]  # the 2nd ticket is throttled
    mails = {m["To"].addresses[0].addr_spec: m for m in smtp.wait_for(2)}
    mine, theirs = survey_link(mails[EMAIL], 2), survey_link(mails[OTHER], 5)
    client.post(mine, data={"rating": "2", "comment": "Slow"})
    client.post(mine, data={"rating": "4", "comment": "Better after the call"})
    client.post(mine, data={"rating": "1", "comment": "Please forget me"})  # the latest counts
    client.post(theirs, data={"rating": "5", "comment": "Great"})
    store.cache_people("zendesk", {"564738291002": {"email": EMAIL, "name": "Eirik Slettmeg"},
                                   "564738299999": {"email": EMAIL}}, ttl_s=3600)
    store.suppress(EMAIL)
    # One more event still waiting in the log, not yet applied.
    assert post_event("standard", _standard("T-ER-3", EMAIL, "cust-er-4471", _iso())).status_code == 202
    assert store.redis.xlen(keys.DEAD) == 1
    now = int(time.time() * 1000)
    return {"now": now, "other_card": customer_card(store, settings, OTHER, now),
            "other_rank": store.redis.zscore(keys.RANK_SCORE, OTHER)}


def _values(r: Any, key: str) -> Iterator[str]:
    kind = r.type(key)
    if kind == "string":
        yield r.get(key) or ""
    elif kind == "hash":
        for field, value in r.hgetall(key).items():
            yield field
            yield value
    elif kind in ("set",):
        yield from r.smembers(key)
    elif kind == "zset":
        yield from r.zrange(key, 0, -1)
    elif kind == "list":
        yield from r.lrange(key, 0, -1)
    elif kind == "stream":
        for _, fields in r.xrange(key):
            for field, value in fields.items():
                yield field
                yield value


def traces_left(store: Any) -> list[tuple[str, str]]:
    """Return (key, trace) for every key whose name or content mentions the erased customer."""
    found = []
    for key in store.redis.scan_iter(count=1000):
        text = (key + "\n" + "\n".join(_values(store.redis, key))).lower()
        found += [(key, trace) for trace in TRACES if trace.lower() in text]
    return found


def assert_aggregates_match_a_rebuild(store: Any, settings: Any) -> None:
    aggregates = compute_aggregates(store, settings)
    for kind in keys.AGGREGATE_KINDS:
        rebuilt = {ident for k, ident in aggregates if k == kind}
        assert set(store.ids(kind)) == rebuilt, kind
        for ident in rebuilt:
            live = store.aggregate(kind, ident)
            expected = aggregates[(kind, ident)]
            for field in (*COUNTS, *SUMS):
                assert math.isclose(getattr(live, field), getattr(expected, field), rel_tol=1e-9, abs_tol=1e-9), \
                    (kind, ident, field, live, expected)
            assert {day: nv for day, nv in live.days.items() if nv != (0, 0)} == expected.days, (kind, ident)


def test_erasing_through_the_command_line_leaves_no_trace_and_exact_aggregates(history, env, store, settings):
    assert traces_left(store)  # the scan does find the customer before
    erased = tracker(env, "erase", "Erase.Me@Example.no")
    assert erased.returncode == 0, erased.stderr
    out = erased.stdout
    assert out.startswith(f"Erased {EMAIL}: 1 profile, 2 tickets, 1 order, 4 aliases, 2 surveys, 1 answer, "
                          "5 logged events, 1 dead letter,")
    assert "Every aggregate was adjusted." in out
    assert traces_left(store) == []
    assert customer_card(store, settings, OTHER, history["now"]) == history["other_card"]
    assert store.redis.zscore(keys.RANK_SCORE, OTHER) == history["other_rank"]
    assert_aggregates_match_a_rebuild(store, settings)
    # The agent and team keep only the other customer's answer.
    agent = store.aggregate("agent", "standard:a-7")
    assert (agent.n, agent.sent, agent.value6) == (1, 1, 600)
    again = tracker(env, "erase", EMAIL)
    assert again.returncode == 0 and again.stdout.strip() == f"Nothing is stored about {EMAIL}; nothing was erased."
    assert drain(store, settings) == 0  # the waiting event went with the rest


def test_erasing_through_the_api_removes_everything_and_says_what(history, client, store, settings):
    key = store.create_key("dpo")
    auth = {"Authorization": f"Bearer {key}"}
    response = client.delete("/api/v1/customers/Erase.Me@Example.no", headers=auth)
    assert response.status_code == 200, response.json
    erased = response.json["erased"]
    assert response.json["customer"] == EMAIL
    assert {k: erased[k] for k in ("profile", "tickets", "orders", "aliases", "surveys", "responses", "sent",
                                   "dead_letters")} == {"profile": 1, "tickets": 2, "orders": 1, "aliases": 4,
                                                        "surveys": 2, "responses": 1, "sent": 1, "dead_letters": 1}
    assert erased["log_events"] >= 4
    assert traces_left(store) == []
    assert_aggregates_match_a_rebuild(store, settings)
    assert client.get("/api/v1/customers/erase.me@example.no", headers=auth).status_code == 404
    assert client.get(f"/api/v1/customers/{OTHER}", headers=auth).status_code == 200


def test_an_erasure_that_stopped_half_way_finishes_when_run_again(history, store, settings):
    first = store.customer_footprint(EMAIL)["sids"][0]
    assert store.erase_survey(first, EMAIL)[0] == 1  # as if the process died after the first survey
    assert_aggregates_match_a_rebuild(store, settings)
    report = erase_customer(store, settings, EMAIL)
    assert report.found and report.surveys == 1
    assert traces_left(store) == []
    assert_aggregates_match_a_rebuild(store, settings)


def test_erasing_twice_or_an_unknown_customer_changes_nothing(history, store, settings):
    erase_customer(store, settings, EMAIL)
    snapshot = {key: sorted(_values(store.redis, key)) for key in store.redis.scan_iter()}
    again = erase_customer(store, settings, EMAIL)
    unknown = erase_customer(store, settings, "nobody@example.no")
    for report in (again, unknown):
        assert not report.found
        assert all(v == 0 for k, v in asdict(report).items() if k != "customer")
    assert {key: sorted(_values(store.redis, key)) for key in store.redis.scan_iter()} == snapshot


@pytest.mark.parametrize("named", ["%20", "x", "a", "{", "keep", "example.no", "@example.no", "keep@", "%40"])
def test_erasing_by_what_is_no_address_through_the_api_erases_nothing_and_says_why(history, client, store, settings,
                                                                                  named):
    # The log is swept for the address as a word: a blank took every entry, a word every entry holding it.
    def kept() -> dict[str, list[str]]:  # all but the API key and its requests counted
        return {name: sorted(_values(store.redis, name)) for name in store.redis.scan_iter()
                if name != keys.API_KEYS and not name.startswith(f"{keys.PREFIX}:rate:")}

    auth = {"Authorization": f"Bearer {store.create_key('dpo')}"}
    before = kept()
    response = client.delete(f"/api/v1/customers/{named}", headers=auth)
    assert response.status_code == 404 and "is not an email address. Nothing was erased." in response.json["message"]
    assert kept() == before
    with pytest.raises(ValueError, match="is not an email address"):
        erase_customer(store, settings, " ")


def test_an_address_that_folds_out_of_the_address_pattern_is_still_erased_as_written_or_as_kept(
        world, client, store, settings, env):
    # CustomerSchema takes "İnci@…" and keeps it folded, "i̇nci@…", with a combining dot no address pattern takes.
    for ticket, email in (("T-I1", "İnci@example.no"), ("T-I2", "İlker@example.no")):
        world.solve(ticket, email)
    drain(store, settings)
    auth = {"Authorization": f"Bearer {store.create_key('dpo')}"}
    response = client.delete("/api/v1/customers/İnci@example.no", headers=auth)
    assert response.status_code == 200 and response.json["erased"]["profile"] == 1, response.json
    assert response.json["customer"] == "İnci@example.no".lower()
    erased = tracker(env, "erase", "İlker@example.no".lower())
    assert erased.returncode == 0 and erased.stdout.startswith(f"Erased {'İlker@example.no'.lower()}: 1 profile")
    assert store.customer_footprint("İlker@example.no".lower())["profile"] in (None, {})


def test_erasing_an_unknown_customer_on_the_command_line_says_so_plainly(env):
    result = tracker(env, "erase", "nobody@example.no")
    assert result.returncode == 0
    assert result.stdout.strip() == "Nothing is stored about nobody@example.no; nothing was erased."
    for typo in ("not-an-email", " ", "keep@", "@example.no"):
        refused = tracker(env, "erase", typo)
        assert refused.returncode == 1 and "is not an email address" in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr


def test_erasing_an_address_only_the_suppression_list_holds_says_it_left_the_plain_list(env, store, settings):
    store.suppress("listed.only@example.no")  # suppressed by hand, never a customer
    result = tracker(env, "erase", "Listed.Only@example.no")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "Erased listed.only@example.no: 0 profiles, 0 tickets, 0 orders, 0 aliases, 0 surveys, 0 answers, "
        "0 logged events, 0 dead letters, 0 other keys. Every aggregate was adjusted. The address left the plain "
        "suppression list; it stays suppressed by a keyed hash.")
    assert not store.is_suppressed("listed.only@example.no")
    assert opt_out(store, settings, "listed.only@example.no").suppressed
    again = erase_customer(store, settings, "listed.only@example.no")
    assert not again.found and again.suppressed == 0


def test_the_customer_comes_back_only_with_new_events_and_stays_suppressed_by_hash(history, post_event, store,
                                                                                  settings):
    erase_customer(store, settings, EMAIL)
    assert not store.is_suppressed(EMAIL)  # the plain address is gone...
    assert opt_out(store, settings, EMAIL).suppressed  # ...and its keyed hash keeps the suppression
    assert post_event("standard", _standard("T-ER-9", EMAIL, "cust-er-4471", _iso())).status_code == 202
    drain(store, settings)
    card = customer_card(store, settings, EMAIL, int(time.time() * 1000))
    assert card is not None and card.responses == 0 and card.surveys_sent == 0


def _scans(store: Any) -> int:
    """Return the SCAN calls Redis has run (INFO commandstats)."""
    return int(store.redis.info("commandstats").get("cmdstat_scan", {}).get("calls", 0))


def test_an_erasure_walks_no_keyspace_once_every_cached_vendor_user_is_indexed(history, post_event, store, settings):
    # The customer named by id only, as several helpdesks do: found in the log by the id alone.
    id_only = solved_event(ticket="T-ER-4", at=_iso())
    id_only["customer"] = {"id": "cust-er-4471"}
    assert post_event("standard", id_only).status_code == 202
    # A store this version began indexes every cached vendor user from the start.
    assert store.redis.get(keys.PEOPLE_INDEXED) == "0"
    before = _scans(store)
    report = erase_customer(store, settings, EMAIL)
    assert _scans(store) == before  # the customer's keys are named, the cached users indexed, the log sifted
    assert report.found and report.log_events >= 5
    assert traces_left(store) == []  # both cached users (one under an id that never became an alias) went too
    assert_aggregates_match_a_rebuild(store, settings)


def test_vendor_users_cached_before_the_index_are_found_by_a_walk_until_they_have_expired(history, store, settings):
    store.redis.delete(keys.PEOPLE_INDEXED)  # a store upgraded from a version without the index
    # As a version without the index cached a look-up: no "people" set names it.
    store.redis.hset(keys.person_cache("zendesk", "564738299999"), mapping={"email": "Erase.Me@example.no"})
    before = _scans(store)
    erase_customer(store, settings, EMAIL)
    assert _scans(store) > before
    assert traces_left(store) == []
    # That erasure began the index's clock: an erasure walks again until a day has passed since, then no more.
    since = int(store.redis.get(keys.PEOPLE_INDEXED))
    assert abs(since - time.time() * 1000) < 60_000
    before = _scans(store)
    assert not erase_customer(store, settings, OTHER.replace("keep", "nobody")).found
    assert _scans(store) > before
    store.redis.set(keys.PEOPLE_INDEXED, since - 86_400_000)
    before = _scans(store)
    assert not erase_customer(store, settings, OTHER.replace("keep", "nobody")).found
    assert _scans(store) == before


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_IDS = st.one_of(st.text("0123456789", min_size=1, max_size=4), st.text("aBc-Ø:1é{}\"", min_size=1, max_size=6))


def _cased(draw: Any, text: str) -> str:
    return "".join(c.upper() if draw(st.booleans()) else c for c in text)


@st.composite
def _customer_and_entry(draw: Any) -> tuple[Any, str]:
    """A customer (email, aliases, tickets, orders) and one log entry, often about them by email or by an id."""
    email = draw(st.sampled_from(["kari@example.no", "ø.lund@example.no", "åse@bøker.no", "a.b+c@x.io", "}odd@x.no"]))
    source = draw(st.sampled_from(["standard", "zendesk", "shop:eu"]))
    ident, ticket, order = draw(_IDS), draw(_IDS), draw(_IDS)
    query = log_query(email, [(source, ident), (source, "order:" + order)], [f"{source}:{ticket}"],
                      [f"{source}:{order}"])
    customer: dict[str, Any] = draw(st.sampled_from([
        {"email": _cased(draw, email)}, {"id": ident}, {"id": int(ident) if ident.isdigit() else ident},
        {"id": draw(_IDS)}, {"email": "other@example.no"}, {}]))
    record: dict[str, Any] = {"type": "ticket.solved", "source": draw(st.sampled_from([source, "other"])),
                              "customer": customer, "id": draw(_IDS)}
    about = draw(st.sampled_from(["ticket", "order", None]))
    if about:
        record[about] = {"id": draw(st.sampled_from([ticket, order, ident, draw(_IDS)]))}
    if draw(st.booleans()):
        record["comment"] = f"write to {_cased(draw, email)} please" if draw(st.booleans()) else draw(st.text())
    spaced = draw(st.booleans())
    text = json.dumps(record) if spaced else json.dumps(record, separators=(",", ":"), sort_keys=True)
    fields = {"e": text}
    if draw(st.booleans()):  # a dead letter: the event, where it was, and why, in free text
        fields |= {"origin": "1700000000000-0", "shard": "3",
                   "reason": draw(st.sampled_from([f"unknown customer {_cased(draw, email)}", "bad total", ""]))}
    return query, fields


@hypothesis_settings(max_examples=1000, deadline=None)
@given(_customer_and_entry())
def test_every_log_entry_the_erasure_matches_holds_one_of_the_needles_redis_sifts_with(drawn):
    # stream_sift.lua sends back only entries whose values, joined and in lower case (ASCII, as Lua's string.lower
    # folds), hold a needle: an entry about the customer without one would stay in the log or the dead letters.
    query, fields = drawn
    if query.matches(fields):
        text = "\x1f".join(fields.values()).translate(_ASCII_LOWER)
        assert any(needle in text for needle in query.needles), (query.needles, fields)
