"""The store on a 3-master Redis Cluster: found out at start-up, outages as StorageUnavailable, scripts in pipelines,
/readyz, the broker Celery can use beside it, and the whole loop over real processes."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from redis.exceptions import RedisClusterException

from tests.cluster import Cluster, running_cluster
from tests.conftest import Process
from tests.signing import signed
from tests.slot_guard import LUA, Guard, crossing_expected
from tests.support import drain, iso, make_env, solved_event, survey_link, tracker, wait_until
from tracker.cli.base import refuse_unusable_broker
from tracker.cli.dev import free_port
from tracker.config import ConfigError, load_settings
from tracker.errors import StorageUnavailable
from tracker.store import Store, keys
from tracker.store.base import StoreClient, StoreCluster, connect
from tracker.web.app import create_app

pytestmark = pytest.mark.cluster
on_both = pytest.mark.parametrize("store_kind", ["standalone", "cluster"], indirect=True)
on_cluster = pytest.mark.parametrize("store_kind", ["cluster"], indirect=True)
EMAIL = "kari@example.no"


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A cluster of this test's own, for tests that stop a master."""
    with running_cluster(tmp_path) as cluster:
        yield cluster


def _key_on(store: Store, port: int, prefix: str = "k") -> str:
    """Return a key (without hash tag) whose slot the master on port serves."""
    for n in range(10_000):
        key = f"{prefix}{n}"
        if store.redis.get_node_from_key(key).port == port:
            return key
    raise AssertionError(f"no key found for the master on port {port}")


def _app(store: Store, url: str) -> Any:
    settings = load_settings(make_env(url, free_port()))
    return create_app(settings, store, enqueue=lambda *_: None).test_client()


# --- found out at start-up ------------------------------------------------------------------------------------

def test_a_url_naming_any_node_of_a_cluster_gets_the_cluster_client_and_a_standalone_redis_the_plain_one(
        redis_cluster, redis_server):
    for node in redis_cluster.nodes:
        client = connect(f"redis://{node.address}/0")
        assert isinstance(client, StoreCluster)
        assert client.set(f"written via {node.port}", 1)  # whichever master serves the key's slot
    store = Store.from_url(redis_cluster.url)
    state = store.cluster_state()
    assert store.is_cluster and state is not None and state.ok
    assert (state.masters, state.known_nodes, state.slots_ok) == (3, 3, 16384)
    standalone = Store.from_url(f"{redis_server}/0")
    assert isinstance(standalone.redis, StoreClient) and not standalone.is_cluster
    assert standalone.cluster_state() is None


def test_a_cluster_node_named_with_a_database_other_than_0_is_a_setting_error(redis_cluster):
    with pytest.raises(ConfigError, match=r"TRACKER_REDIS_URL .* database other than 0"):
        connect(f"{redis_cluster.url}/1")


def test_a_store_opened_while_its_cluster_is_down_serves_the_cluster_once_it_is_up(tmp_path):
    cluster = Cluster(tmp_path)  # ports chosen, nothing started
    store = Store.from_url(cluster.url)
    try:
        with pytest.raises(StorageUnavailable):
            store.ping()
        cluster.start()
        wait_until(lambda: store.is_cluster, timeout=10, what="the store to find out the node is a cluster's")
        for n in range(30):  # keys on every master
            store.redis.set(f"k{n}", n)
        assert [store.redis.get(f"k{n}") for n in range(30)] == [str(n) for n in range(30)]
    finally:
        cluster.stop()


# --- commands, pipelines and scripts --------------------------------------------------------------------------

@on_both
def test_scripts_run_alone_and_queued_in_pipelines_loaded_on_a_miss(redis_url):
    store = Store.from_url(redis_url)
    release_if = store.script("release_if")  # DEL KEYS[1] if it holds ARGV[1]
    for key, value in (("{t}:a", "x"), ("{t}:b", "y"), ("a", "mine"), ("b", "mine"), ("c", "mine"), ("d", "mine")):
        store.redis.set(key, value)
    store.redis.script_flush()  # every master forgets every script: each call below loads it first
    assert release_if(keys=["a"], args=["not mine"]) == 0
    assert release_if(keys=["a"], args=["mine"]) == 1
    store.redis.script_flush()
    # A transaction of one slot, the script queued in it (EVAL on a cluster, where redis-py refuses EVALSHA).
    transaction = store.redis.pipeline()
    release_if(keys=["{t}:a"], args=["x"], client=transaction)
    transaction.get("{t}:b")
    assert transaction.execute() == [1, "y"]
    # A plain pipeline over keys of several slots (and masters): each command on its own.
    store.redis.script_flush()
    pipeline = store.redis.pipeline(transaction=False)
    for key in ("b", "c", "d"):
        release_if(keys=[key], args=["mine"], client=pipeline)
    pipeline.get("b")
    assert pipeline.execute() == [1, 1, 1, None]


@on_cluster
def test_a_transaction_of_one_slot_commits_on_the_cluster_and_one_of_two_slots_is_refused_as_a_bug(redis_url):
    store = Store.from_url(redis_url)
    transaction = store.redis.pipeline()
    transaction.incr("{c}:n").incr("{c}:m")
    assert transaction.execute() == [1, 1]

    def add(pipe: Any) -> None:
        seen = int(pipe.get("{c}:n"))
        pipe.multi()
        pipe.set("{c}:n", seen + 10)

    store.redis.transaction(add, "{c}:n")
    assert store.redis.get("{c}:n") == "11"
    crossing = store.redis.pipeline()
    crossing.incr("a").incr("b")  # two slots: a bug in our code, never an outage
    with pytest.raises(RedisClusterException), crossing_expected():
        crossing.execute()


# --- outages and readiness ------------------------------------------------------------------------------------

@on_both
def test_readyz_reports_the_clusters_state_and_is_unchanged_on_a_standalone_redis(client, store_kind):
    ready = client.get("/readyz")
    assert ready.status_code == 200
    if store_kind == "standalone":
        assert ready.json == {"status": "ok", "redis": "ok"}
    else:
        assert ready.json["status"] == "ok" and ready.json["cluster"]["state"] == "ok"
        assert ready.json["cluster"]["masters"] == 3 and ready.json["cluster"]["slots_ok"] == 16384


def test_a_stopped_master_makes_commands_pipelines_and_scripts_unavailable_and_readyz_says_why(own_cluster, smtp):
    store = Store.from_url(own_cluster.url)
    app = _app(store, own_cluster.url)
    stopped = own_cluster.nodes[1]
    lost, kept = _key_on(store, stopped.port), _key_on(store, own_cluster.nodes[0].port)
    store.redis.set(lost, "v")
    store.redis.set(kept, "v")
    assert app.get("/readyz").status_code == 200
    lead = {"Authorization": f"Bearer {store.create_key('lead')}"}
    assert app.get(f"/api/v1/customers/{EMAIL}", headers=lead).status_code == 404

    stopped.stop()
    transaction = store.redis.pipeline()
    transaction.get(lost)
    for call in (lambda: store.redis.get(lost), transaction.execute,
                 lambda: store.script("release_if")(keys=[lost], args=["v"])):
        with pytest.raises(StorageUnavailable):
            call()
    ready = app.get("/readyz")
    assert ready.status_code == 503 and ready.json["redis"] == "cluster_not_ok"
    assert stopped.address in ready.json["reason"], ready.json

    own_cluster.wait_state("fail")  # the others mark it failed: no key is served any more
    with pytest.raises(StorageUnavailable):
        store.redis.get(kept)
    ready = app.get("/readyz")
    assert ready.status_code == 503 and ready.json["cluster"]["state"] == "fail", ready.json
    card = app.get(f"/api/v1/customers/{EMAIL}", headers=lead)  # its key's check and count refused in place
    assert card.status_code == 503 and card.headers["Retry-After"], card.get_data(as_text=True)
    checked = tracker(make_env(own_cluster.url, smtp.port, TRACKER_BROKER_URL="amqp://127.0.0.1:1//"), "check")
    problem = [line for line in checked.stderr.splitlines() if "TRACKER_REDIS_URL" in line]
    assert checked.returncode == 1 and len(problem) == 1 and "Redis Cluster" in problem[0], checked.stderr

    stopped.start()
    own_cluster.wait_state("ok")
    wait_until(lambda: app.get("/readyz").status_code == 200, timeout=20, what="/readyz to answer 200 again")
    assert store.redis.get(kept) == "v"
    store.redis.set(lost, "again")  # the restarted master kept nothing (no persistence here), and serves again
    assert store.redis.get(lost) == "again"


def _solved(app: Any, ticket: str, delivery: str) -> Any:
    """POST a signed ticket.solved of EMAIL's to the receiver as one delivery."""
    raw = json.dumps(solved_event(ticket=ticket, email_address=EMAIL, at=iso(60))).encode()
    headers, query = signed("standard", raw, headers={"webhook-id": delivery})
    return app.post("/webhooks/standard", data=raw, query_string=query,
                    headers={"Content-Type": "application/json", **headers})


def _one_ticket_applied(url: str, smtp_port: int, ticket: str, delivery: str) -> tuple[Store, Any, Any, dict[str, str],
                                                                                   Any]:
    """Open the store on a cluster and an app on it, apply one solved ticket of EMAIL's, and return the store, the
    settings, the app, a lead's headers and EMAIL's card as it then reads (asserted 200)."""
    store = Store.from_url(url)
    settings = load_settings(make_env(url, smtp_port))
    app = create_app(settings, store, enqueue=lambda *_: None).test_client()
    lead = {"Authorization": f"Bearer {store.create_key('lead')}"}
    assert _solved(app, ticket, delivery).status_code == 202
    assert drain(store, settings) == 1
    card = app.get(f"/api/v1/customers/{EMAIL}", headers=lead)
    assert card.status_code == 200 and card.json["customer"] == EMAIL, card.json
    return store, settings, app, lead, card


def test_a_master_that_dies_is_replaced_by_its_replica_and_the_product_serves_on_from_it(tmp_path, smtp):
    """A cluster with a replica per master, as one runs in production. The master serving the customer's slot is
    killed (SIGKILL: no shutdown). Until its replica takes over, what needs that slot is answered 503 with
    Retry-After (never a 500) and /readyz says the cluster is not ok; once the replica is promoted the client
    finds it by itself: the card is read from it as it was, /readyz is 200, and a new webhook is accepted and
    applied on the same store object, with no restart."""
    with running_cluster(tmp_path, replicas=1) as cluster:
        store, settings, app, lead, card = _one_ticket_applied(cluster.url, smtp.port, "F-1", "msg-f1")

        dying = cluster.owner(store.redis.keyslot(keys.customer(EMAIL, "profile")))
        masters = {cluster.owner(slot).port for slot in range(0, 16384, 128)}
        wait_until(lambda: all(node.replicated() for node in cluster.nodes if node.port in masters), timeout=20,
                   what="every replica to hold all its master was sent")
        dying.kill()

        unavailable = app.get(f"/api/v1/customers/{EMAIL}", headers=lead)
        if unavailable.status_code != 200:  # the replica may already serve: a 2 s node timeout is short
            assert unavailable.status_code == 503 and unavailable.headers["Retry-After"], unavailable.data

        def promoted() -> bool:
            return cluster.owner(store.redis.keyslot(keys.customer(EMAIL, "profile"))).port != dying.port

        wait_until(promoted, timeout=30, interval=0.2, what="the dead master's replica to be promoted")
        cluster.wait_state("ok")
        wait_until(lambda: app.get("/readyz").status_code == 200, timeout=30, what="/readyz to answer 200 again")
        served = app.get(f"/api/v1/customers/{EMAIL}", headers=lead)
        assert served.status_code == 200 and served.json == card.json, served.get_data(as_text=True)
        assert _solved(app, "F-2", "msg-f2").status_code == 202
        assert _solved(app, "F-1", "msg-f1").json["status"] == "duplicate"  # the dedupe marks survived too
        assert drain(store, settings) == 1
        assert sorted(ticket.key for ticket in store.customer_tickets(EMAIL)) == ["standard:F-1", "standard:F-2"]


def test_slots_moving_to_a_master_added_to_the_cluster_are_followed_and_what_cannot_run_yet_is_retried_later(
        own_cluster):
    """An operator adds a master and moves slots to it (what `redis-cli --cluster rebalance` does, slot by slot).
    A key already moved is answered ASK with the new master's address, which the client learns from that reply
    (redis-py alone fails there, a 500). A script whose keys are split between the two masters, or not all there
    yet, cannot run until the slot's move ends (TRYAGAIN): the webhook is answered 503, nothing is stored, and
    the sender's retry after the move is accepted once."""
    store, settings, app, lead, card = _one_ticket_applied(own_cluster.url, free_port(), "M-1", "msg-before")
    added = own_cluster.add_master()

    # The customer's slot moving, every key of it already on the new master: the card is read there (ASK).
    customer_slot = store.redis.keyslot(keys.customer(EMAIL, "profile"))
    customer_source = own_cluster.begin_moving(customer_slot, added)
    assert own_cluster.move_keys(customer_slot, customer_source, added) > 0
    moving = app.get(f"/api/v1/customers/{EMAIL}", headers=lead)
    assert moving.status_code == 200 and moving.json == card.json, moving.get_data(as_text=True)

    # The event log's slots moving, their keys not moved yet: an append's scripts find a key on the owner and
    # one missing (TRYAGAIN) until the move ends.
    log_slots = sorted({store.redis.keyslot(keys.stream(shard)) for shard in range(keys.BUCKETS)})
    sources = {slot: own_cluster.begin_moving(slot, added) for slot in log_slots}
    refused = _solved(app, "M-2", "msg-moving")
    assert refused.status_code == 503 and refused.headers["Retry-After"], refused.get_data(as_text=True)
    assert "Retry later" in refused.json["message"]

    for slot, source in [*sources.items(), (customer_slot, customer_source)]:
        own_cluster.finish_moving(slot, source, added)
    assert {own_cluster.owner(slot).port for slot in [*log_slots, customer_slot]} == {added.port}
    assert _solved(app, "M-2", "msg-moving").status_code == 202  # not a duplicate: the refused attempt stored nothing
    repeated = _solved(app, "M-2", "msg-moving")
    assert repeated.status_code == 200 and repeated.json["status"] == "duplicate", repeated.json
    assert drain(store, settings) == 1
    assert sorted(ticket.key for ticket in store.customer_tickets(EMAIL)) == ["standard:M-1", "standard:M-2"]


def test_a_drain_whose_customers_slot_is_moving_parks_nothing_and_applies_the_batch_once_the_move_ends(own_cluster):
    """A customer's step whose keys are split by a slot's move (some on its owner, some not there) cannot run
    until the move ends (TRYAGAIN, then the client gives up): the drain stops as on any outage and applies the
    batch later, instead of parking the event as one that failed."""
    store = Store.from_url(own_cluster.url)
    settings = load_settings(make_env(own_cluster.url, free_port()))
    app = create_app(settings, store, enqueue=lambda *_: None).test_client()

    assert _solved(app, "M-1", "msg-M-1").status_code == 202
    assert drain(store, settings) == 1
    added = own_cluster.add_master()
    customer_slot = store.redis.keyslot(keys.customer(EMAIL, "profile"))
    source = own_cluster.begin_moving(customer_slot, added)
    assert own_cluster.move_keys(customer_slot, source, added, most=1) == 1  # one of the customer's keys moved
    assert _solved(app, "M-2", "msg-M-2").status_code == 202  # the event log's slots are not moving
    with pytest.raises(StorageUnavailable):
        drain(store, settings)
    assert store.redis.xlen(keys.DEAD) == 0

    own_cluster.finish_moving(customer_slot, source, added)
    assert drain(store, settings) == 1
    assert sorted(ticket.key for ticket in store.customer_tickets(EMAIL)) == ["standard:M-1", "standard:M-2"]
    assert store.redis.xlen(keys.DEAD) == 0


# --- the broker beside a cluster ------------------------------------------------------------------------------

def _one_line_naming_the_broker(result: Any) -> bool:
    lines = result.stderr.strip().splitlines()
    return result.returncode == 2 and len(lines) == 1 and "TRACKER_BROKER_URL" in lines[0] \
        and "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["web", "worker", "beat"])
def test_with_a_cluster_store_the_processes_refuse_a_broker_celery_cannot_use_in_one_line(redis_cluster, command):
    unset = make_env(redis_cluster.url, free_port())
    assert _one_line_naming_the_broker(tracker(unset, command))
    another_node = make_env(redis_cluster.url, free_port(),
                            TRACKER_BROKER_URL=f"redis://{redis_cluster.nodes[2].address}/0")
    assert _one_line_naming_the_broker(tracker(another_node, command))


def test_a_redis_broker_that_is_a_cluster_node_is_refused_whatever_the_store(redis_cluster, redis_url):
    settings = load_settings(make_env(redis_url, free_port(), TRACKER_BROKER_URL=f"{redis_cluster.url}/0"))
    with pytest.raises(ConfigError, match=r"TRACKER_BROKER_URL .* names a node of a Redis Cluster"):
        refuse_unusable_broker(settings)
    for usable in (redis_url, "amqp://guest:guest@127.0.0.1:5672//", "sentinel://127.0.0.1:26379/0?master_name=mymaster"):
        refuse_unusable_broker(load_settings(make_env(redis_cluster.url, free_port(), TRACKER_BROKER_URL=usable)))


@on_cluster
def test_check_reports_the_cluster_and_names_a_broker_celery_cannot_use(env):
    checked = tracker(env, "check")
    assert checked.returncode == 0, checked.stderr
    assert "a Redis Cluster: cluster_state ok, 3 masters" in checked.stdout
    refused = tracker({**env, "TRACKER_BROKER_URL": env["TRACKER_REDIS_URL"]}, "check")
    problems = refused.stderr.strip().splitlines()
    assert refused.returncode == 1 and len(problems) == 1 and "TRACKER_BROKER_URL" in problems[0], refused.stderr


# --- the whole loop -------------------------------------------------------------------------------------------

@pytest.fixture
def web(env: dict[str, str]) -> Iterator[str]:
    """Run `tracker web` (gunicorn) against this test's store; yield its base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = Process(["web"], {**env, "TRACKER_BIND": f"127.0.0.1:{port}", "TRACKER_WEB_WORKERS": "1",
                                "TRACKER_PUBLIC_URL": base}, ready="Listening at")
    try:
        wait_until(lambda: _answers(base), timeout=30, what="tracker web to answer")
        yield base
    finally:
        process.stop()


def _answers(base: str) -> bool:
    try:
        return requests.get(f"{base}/healthz", timeout=5).ok
    except requests.RequestException:
        return False


@on_cluster
def test_the_whole_loop_runs_on_the_cluster_over_real_processes(env, store, web, start_worker, smtp):
    start_worker(beat=True)
    ready = requests.get(f"{web}/readyz", timeout=10)
    assert ready.status_code == 200 and ready.json()["cluster"]["state"] == "ok"
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
    raw = json.dumps(solved_event(ticket="C-1", email_address=EMAIL, at=at)).encode()
    headers, query = signed("standard", raw)
    accepted = requests.post(f"{web}/webhooks/standard", data=raw, params=query, timeout=10,
                             headers={"Content-Type": "application/json", **headers})
    assert accepted.status_code == 202, accepted.text
    (mail,) = smtp.wait_for(1, timeout=60)
    assert mail["To"].addresses[0].addr_spec == EMAIL
    wait_until(lambda: [s for s in store.customer_surveys(EMAIL) if s.status == "sent"],
               what="the survey to be marked sent")
    answered = requests.post(f"{web}{survey_link(mail, 4)}", data={"rating": "4", "comment": "Fine"}, timeout=10)
    assert answered.status_code == 200, answered.text
    key = store.create_key("lead")
    card = requests.get(f"{web}/api/v1/customers/{EMAIL}", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert card.status_code == 200, card.text
    assert card.json()["responses"] == 1 and card.json()["surveys_sent"] == 1
    assert card.json()["last_response"]["ticket"] == "standard:C-1"


# --- the slot guard -------------------------------------------------------------------------------------------

def test_the_slot_guard_names_commands_scripts_and_transactions_whose_keys_fall_in_two_slots(redis_url):
    guard = Guard()
    client = connect(redis_url)
    release_if = hashlib.sha1((LUA / "release_if.lua").read_bytes()).hexdigest()  # noqa: S324 - Redis's names
    guard.judge(client, [("SET", "{x}:a", 1), ("MGET", "{x}:a", "{x}:b"), ("EVALSHA", release_if, 2, "{x}:a",
                                                                            "{x}:b", "arg")], transaction=False)
    guard.judge(client, [("SET", "{x}:a", 1), ("GET", "{x}:b")], transaction=True, watched=["{x}:c"])
    guard.judge(client, [("SCAN", 0, "MATCH", "t:*"), ("EXPIRE", "{x}:a", 60)], transaction=False)
    assert guard.found == []  # one slot each, and one for the whole transaction
    guard.judge(client, [("MGET", "a", "b"), ("EVALSHA", release_if, 2, "{x}:a", "{y}:b", "{z}:not-a-key"),
                         ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "{x}:s", "{y}:s", ">", ">")], transaction=False)
    guard.judge(client, [("SET", "{x}:a", 1), ("GET", "{x}:b")], transaction=True, watched=["{y}:c"])
    assert [(v.what, v.keys) for v in guard.found] == [
        ("MGET", ("a", "b")), ("script release_if (EVALSHA)", ("{x}:a", "{y}:b")),
        ("XREADGROUP", ("{x}:s", "{y}:s")), ("MULTI/EXEC [SET, GET]", ("{x}:a", "{x}:b", "{y}:c"))]
    assert "touches 2 slots" in guard.found[0].line() and "a (slot 15495)" in guard.found[0].line()
