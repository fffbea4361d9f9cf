"""A customer's keys share one hash slot whatever their address holds: "}" first (RFC 5322 allows it) left layout
10's hash tag empty, so each key fell in a slot of its own and a cluster refused every script of that customer."""

from __future__ import annotations

from typing import Any

import pytest
from redis.crc import key_slot

from tests.support import World, refused_as_behind, tracker
from tests.test_outbox import assert_equals_a_rebuild
from tests.test_settle import now_ms
from tracker.privacy.erase import erase_customer
from tracker.scores.cards import customer_card
from tracker.store import keys

BRACED = ["}kari@example.no", "}}@example.no", "{ola}@example.no", "a}b@example.no", "{}@example.no"]
PLAIN = "anna@example.no"
STEM = f"{keys.PREFIX}:cust:{{"


@pytest.fixture
def world(post_event: Any, store: Any, env: dict[str, str], smtp: Any, client: Any) -> World:
    return World(post_event, store, env, smtp, client)


def customer_keys(store: Any, email: str) -> list[str]:
    """Every key named for a customer (keys.customer), found by scanning."""
    head = keys.customer(email, "profile").removesuffix("profile")
    return sorted(name for name in store.redis.scan_iter(match=f"{keys.PREFIX}:cust:*", count=1000)
                  if name.startswith(head))


def test_names_never_leave_the_tag_empty_and_no_two_addresses_share_one() -> None:
    addresses = [*BRACED, PLAIN, "@}kari@example.no", "@kari@example.no", "@@x", "}", "@", "x"]
    names = [keys.customer(address, "profile") for address in addresses]
    assert len(set(names)) == len(addresses)
    for address in addresses:
        slots = {key_slot(keys.customer(address, part).encode()) for part in ("profile", "timeline", "surveys")}
        assert len(slots) == 1, address
        name = keys.customer(address, "profile")
        tag = name[name.index("{") + 1:name.index("}", name.index("{") + 1)]
        assert tag, address  # what Redis hashes: an empty tag would hash each whole name
    assert keys.customer(PLAIN, "profile") == f"{STEM}{PLAIN}}}:profile"  # other addresses keep their names


def test_customers_whose_address_holds_braces_go_round_the_whole_loop(world: World, store: Any, settings: Any,
                                                                       client: Any) -> None:
    """The slot guard (conftest) fails this on any command of two slots; on the cluster variant Redis refuses it."""
    for n, email in enumerate(BRACED):
        world.solved_and_answered(f"T-{n}", email, 1 + n % 5, "Took a week")
    auth = {"Authorization": f"Bearer {store.create_key('lead')}"}
    for n, email in enumerate(BRACED):
        card = client.get(f"/api/v1/customers/{email}", headers=auth)
        assert card.status_code == 200 and card.json["responses"] == 1, card.json
        assert card.json["last_response"]["rating"] == 1 + n % 5
        found = customer_keys(store, email)
        assert len(found) > 3 and len({key_slot(name.encode()) for name in found}) == 1, found
    assert_equals_a_rebuild(store, settings)
    erase_customer(store, settings, BRACED[0])
    assert customer_keys(store, BRACED[0]) == []
    assert client.get(f"/api/v1/customers/{BRACED[0]}", headers=auth).status_code == 404
    assert customer_keys(store, BRACED[1])  # erasing one leaves the others


def _to_layout10(store: Any) -> list[str]:
    """Name the keys of customers whose address begins with "}" as layout 10 did; return their old names."""
    moved = []
    for name in list(store.redis.scan_iter(match=f"{STEM}@}}*", count=1000)):
        old = STEM + name[len(STEM) + 1:]  # another slot: moved as the upgrade moves it back
        store.redis.restore(old, max(0, store.redis.pttl(name)), store.redis.dump(name))
        store.redis.delete(name)
        moved.append(old)
    return sorted(moved)


def test_a_layout_10_redis_is_refused_until_upgrade_store_renames_its_customers_of_an_empty_tag(
        world: World, store: Any, env: dict[str, str], settings: Any, client: Any) -> None:
    world.solved_and_answered("T-1", "}kari@example.no", 2, "Slow")
    world.solved_and_answered("T-2", PLAIN, 5)
    world.solve("T-3", "}}@example.no")
    assert world.send() == ["sent"]
    at, emails = now_ms(), ["}kari@example.no", "}}@example.no", PLAIN]
    before = {email: customer_card(store, settings, email, at) for email in emails}
    timeline = store.redis.pttl(keys.customer("}kari@example.no", "timeline"))
    old = _to_layout10(store)
    assert len(old) > 6 and len({key_slot(name.encode()) for name in old}) > 1  # what a cluster refuses
    store.redis.set(keys.LAYOUT, keys.LAYOUT_SUMMED)
    refused_as_behind(env)
    # An upgrade stopped after restoring one key under its new name, before deleting the old: run again, it ends.
    first = old[0]
    store.redis.restore(keys.layout10_moved(first), 0, store.redis.dump(first))
    upgraded = tracker(env, "upgrade-store")
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"{len(old) - 1} keys of customers whose address begins with }} renamed" in upgraded.stdout
    assert "rebuilt" not in upgraded.stdout
    assert list(store.redis.scan_iter(match=keys.LAYOUT10_EMPTY_TAG_MATCH)) == []
    assert store.redis.get(keys.LAYOUT) == keys.LAYOUT_VERSION
    assert {email: customer_card(store, settings, email, at) for email in emails} == before
    assert 0 < store.redis.pttl(keys.customer("}kari@example.no", "timeline")) <= timeline  # its expiry kept
    again = tracker(env, "upgrade-store")
    assert again.returncode == 0 and "0 keys of customers whose address begins with } renamed" in again.stdout
    assert "already" in again.stdout
    world.answer("}}@example.no", 4)  # the renamed keys take the next answer
    auth = {"Authorization": f"Bearer {store.create_key('lead')}"}
    assert client.get("/api/v1/customers/}}@example.no", headers=auth).json["responses"] == 1
    assert_equals_a_rebuild(store, settings)
