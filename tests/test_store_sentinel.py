"""The store behind Redis Sentinel (TRACKER_REDIS_URL=sentinel://...): a master with a replica and a Sentinel of the
test's own, both with passwords, as production runs them; the Sentinel made to fail the master over to its replica
under running processes (SENTINEL FAILOVER, which waits for no outage).

The store's connections ask the Sentinel where the master is when they connect; one still on the master the failover
demoted reads READONLY and connects again, so the processes go on without a restart. A wrong password of the master
or the Sentinel, or a master name no Sentinel watches, stops each process at start in one line naming
TRACKER_REDIS_URL, and no password shows.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import redis

from tests.support import make_env, tracker, wait_until
from tests.test_operator_errors import all_at_once, check_naming, one_line_naming
from tests.test_redis_credentials import Loop, leaks
from tests.test_sentinel import MASTER, Servers
from tests.test_sentinel_auth import PASSWORD, SENTINEL_PASSWORD, WRONG, TlsServers, refusals, url
from tracker.cli.dev import free_port
from tracker.config import ConfigError, load_settings
from tracker.errors import StorageUnavailable
from tracker.store import Store

pytestmark = pytest.mark.e2e


@pytest.fixture
def replicated(tmp_path: Path) -> Iterator[Servers]:
    """A master and its replica with PASSWORD, watched by a Sentinel whose own password is SENTINEL_PASSWORD."""
    servers = Servers(tmp_path, password=PASSWORD, sentinel_password=SENTINEL_PASSWORD, replica=True)
    yield servers
    servers.stop()


def master_port(servers: Servers) -> int:
    sentinel = redis.Redis(port=servers.sentinel_port, password=SENTINEL_PASSWORD, decode_responses=True)
    try:
        return int(sentinel.sentinel_get_master_addr_by_name(MASTER)[1])
    finally:
        sentinel.close()


def fail_over(servers: Servers) -> tuple[int, int]:
    """Have the Sentinel promote the replica and demote the master (which then replicates it); return the ports of
    the old master and the new one, once the old one is a replica in step with the new one."""
    old = master_port(servers)
    new = servers.replica_port if old == servers.port else servers.port
    assert new is not None
    sentinel = redis.Redis(port=servers.sentinel_port, password=SENTINEL_PASSWORD, decode_responses=True)
    try:
        # The Sentinel fails over only to a replica it has heard of, and only one failover at a time.
        wait_until(lambda: any(int(replica["port"]) == new and "disconnected" not in replica["flags"]
                               for replica in sentinel.sentinel_slaves(MASTER)), timeout=30,
                   what="the Sentinel to know the replica")
        sentinel.execute_command("SENTINEL", "FAILOVER", MASTER)
    finally:
        sentinel.close()
    wait_until(lambda: master_port(servers) == new, timeout=30, what="the Sentinel to name the new master")
    wait_until(lambda: servers.info(old).get("role") == "slave" and servers.info(old).get("master_port") == new
               and servers.info(old).get("master_link_status") == "up", timeout=60,
               what="the old master to replicate the new one")
    return old, new


def on(port: int) -> redis.Redis:
    return redis.Redis(port=port, password=PASSWORD, decode_responses=True)


def test_the_stores_connections_follow_a_failover_single_commands_scripts_and_transactions_alike(replicated):
    store = Store.from_url(url(replicated))
    client = store.redis
    assert client.set("written:before", "1")  # the thread's own connection, on the first master
    with client.pipeline() as transaction:  # a pooled connection, on the first master too
        transaction.incr("counted")
        transaction.incr("counted")
        assert transaction.execute() == [1, 2]
    old, new = fail_over(replicated)
    # Both connections are still on the demoted master: each write reads READONLY there and is sent again on the
    # new master, once, as nothing was written on a replica.
    with client.pipeline() as transaction:
        transaction.incr("counted")
        assert transaction.execute() == [3]
    assert client.eval("return redis.call('INCR', KEYS[1])", 1, "scripted") == 1
    assert client.set("written:after", "2") and client.get("written:before") == "1"
    master, demoted = on(new), on(old)
    assert master.mget("written:before", "counted", "scripted", "written:after") == ["1", "3", "1", "2"]
    assert demoted.info("replication")["role"] == "slave"
    master.close()
    demoted.close()
    store.redis.close()


def test_a_killed_master_is_an_outage_until_the_sentinel_promotes_its_replica_then_the_same_store_serves_on(
        tmp_path):
    """No planned failover: the master is killed (SIGKILL) and the Sentinel, which marks it down after a second,
    elects and promotes the replica by itself. Meanwhile every call raises StorageUnavailable (a webhook is answered
    503, a task tried again); afterwards the store opened before the kill writes on the new master."""
    servers = Servers(tmp_path, password=PASSWORD, sentinel_password=SENTINEL_PASSWORD, replica=True,
                      down_after_ms=1000)
    try:
        store = Store.from_url(url(servers))
        client = store.redis
        assert client.set("written:before", "1") and client.wait(1, 5000) == 1  # the replica holds it
        assert servers.master is not None
        servers.master.kill()
        servers.master.wait(timeout=10)
        with pytest.raises(StorageUnavailable):
            client.set("written:during", "1")

        def writes() -> bool:
            try:
                return bool(client.set("written:after", "2"))
            except StorageUnavailable:
                return False

        wait_until(writes, timeout=60, interval=0.5, what="the store to write on the promoted replica")
        assert master_port(servers) == servers.replica_port
        assert (client.get("written:before"), client.get("written:after")) == ("1", "2")
        assert store.sentinel_master() == (MASTER, f"127.0.0.1:{servers.replica_port}")
        client.close()
    finally:
        servers.stop()


def test_a_sentinel_store_url_is_read_as_the_brokers_and_refused_in_one_line_naming_tracker_redis_url(redis_url):
    for given, problem in (("sentinel://127.0.0.1:26379/0", "names the master its Sentinels watch"),
                           ("sentinel://127.0.0.1:26379/0?db=1", "takes only master_name"),
                           ("sentinel://:a@s1:26379;sentinel://:b@s2:26379/0?master_name=m", "different credentials"),
                           ("sentinel://s1:26379/x?master_name=m", "must be a number")):
        with pytest.raises(ConfigError, match=f"^TRACKER_REDIS_URL: .*{problem}"):
            load_settings(make_env(given, 25, TRACKER_BROKER_URL=redis_url))
    settings = load_settings(make_env(f"sentinel://:pw@s1:26379;sentinel://s2/0?master_name={MASTER}", 25,
                                      TRACKER_BROKER_URL=redis_url))
    assert settings.redis_url.startswith("sentinel://:pw@s1:26379;")


def test_the_whole_loop_keeps_its_store_behind_a_sentinel_through_a_failover_under_the_running_processes(
        replicated, smtp, tmp_path):
    # No TRACKER_BROKER_URL: Celery's queue is on the same master, found through the same Sentinel.
    env = make_env(url(replicated), smtp.port)  # type: ignore[attr-defined]
    env.pop("TRACKER_BROKER_URL", None)
    checked = tracker(env, "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert (f"ok  Redis: sentinel://:***@127.0.0.1:{replicated.sentinel_port};sentinel://localhost:"
            f"{replicated.sentinel_port}/0?master_name={MASTER}&sentinel_password=*** answers (Redis ") in \
        checked.stdout, checked.stdout
    assert f"the master '{MASTER}' at 127.0.0.1:{replicated.port}" in checked.stdout, checked.stdout
    # The worker in production's shape: prefork children, forked after the main process opened the store.
    with Loop(env, tmp_path, pool=("--pool", "prefork", "--concurrency", "2")) as loop:
        first = loop.run(smtp)
        assert first["responses"] == 1 and first["last_response"]["rating"] == 4
        ready = loop.get("/readyz").json()
        assert ready["redis"] == "ok" and ready["sentinel"] == {"master_name": MASTER,
                                                                "master": f"127.0.0.1:{replicated.port}"}, ready
        _old, new = fail_over(replicated)
        # The web, the worker and beat go on with the new master, as they are: no restart.
        second = loop.run(smtp, rating=2, email="ola@example.no", ticket="S-2")
        assert second["responses"] == 1 and second["last_response"]["rating"] == 2
        wait_until(lambda: loop.get("/readyz").json().get("sentinel", {}).get("master") == f"127.0.0.1:{new}",
                   timeout=30, what="/readyz to name the new master")
        master = on(new)
        assert master.info("replication")["role"] == "master" and master.dbsize() > 0
        master.close()
    outputs = [*loop.outputs(), checked.stdout, checked.stderr]
    assert not leaks(outputs, PASSWORD, SENTINEL_PASSWORD)
    said = "\n".join(outputs[:3])
    assert "Traceback" not in said and "CRITICAL" not in said, said[-3000:]


def test_a_refused_password_or_an_unknown_master_stops_each_process_at_start_in_one_line(replicated, redis_url,
                                                                                           smtp):
    env = make_env(redis_url, smtp.port)  # type: ignore[attr-defined]

    def store(**given: str | None) -> dict[str, str]:
        return {**env, "TRACKER_REDIS_URL": url(replicated, **given)}  # type: ignore[arg-type]

    wrong_master, wrong_sentinel = store(password=WRONG), store(sentinel_password=WRONG)
    unknown = {**env, "TRACKER_REDIS_URL": url(replicated).replace(f"master_name={MASTER}", "master_name=nobody")}
    nobody = free_port()  # no Sentinel there: an operator's command says so, the processes would wait
    down = {**env, "TRACKER_REDIS_URL": f"sentinel://:{quote(PASSWORD, safe='')}@127.0.0.1:{nobody}/0?"
                                        f"master_name={MASTER}"}
    runs = [(wrong_master, ("web",)), (wrong_master, ("worker",)), (wrong_master, ("check",)),
            (wrong_sentinel, ("beat",)), (wrong_sentinel, ("score", "kari@example.no")), (unknown, ("web",)),
            (down, ("check",))]
    results = [result for result, _ in all_at_once(*runs)]
    _master, _sentinel, master_refused, sentinel_refused = refusals(replicated, "TRACKER_REDIS_URL")
    for result in results[:2]:
        assert one_line_naming(result, master_refused), result.stderr
    assert check_naming(results[2], master_refused.removeprefix("TRACKER_REDIS_URL: ")), results[2].stderr
    assert one_line_naming(results[3], sentinel_refused), results[3].stderr
    assert results[4].returncode != 0 and sentinel_refused in results[4].stderr, results[4].stderr
    assert one_line_naming(results[5], "TRACKER_REDIS_URL: no Sentinel of the URL watches a master named 'nobody'"), \
        results[5].stderr
    assert check_naming(results[6], f"TRACKER_REDIS_URL: cannot reach the Redis: no Sentinel of the URL names the "
                                    f"master '{MASTER}': 127.0.0.1:{nobody} does not answer ("), results[6].stderr
    said = [text for result in results for text in (result.stdout, result.stderr)]
    assert not leaks(said, PASSWORD, SENTINEL_PASSWORD, WRONG)
    assert all("Traceback" not in text for text in said), said


def test_a_store_behind_a_sentinel_over_tls_answers_and_a_certificate_not_trusted_is_one_line(
        tmp_path, tls_files, smtp):
    servers = TlsServers(tmp_path, tls_files)
    try:
        trusted = f"{url(servers)}&ssl_ca_certs={tls_files.ca}"  # type: ignore[arg-type]
        env = make_env(trusted, smtp.port)  # type: ignore[attr-defined]
        untrusted = {**env, "TRACKER_REDIS_URL": f"{url(servers)}&ssl_cert_reqs=required"}  # type: ignore[arg-type]
        (checked, _), (refused, _) = all_at_once((env, ("check",)), (untrusted, ("web",)))
        store = Store.from_url(trusted)
        assert store.redis.set("over:tls", "1") and store.redis.get("over:tls") == "1"
        store.redis.close()
    finally:
        servers.stop()
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"the master '{MASTER}' at 127.0.0.1:{servers.port}" in checked.stdout, checked.stdout
    assert one_line_naming(refused, f"TRACKER_REDIS_URL: the TLS certificate of the Sentinel at 127.0.0.1:"
                                    f"{servers.sentinel_port} is not trusted"), refused.stderr
    said = [text for result in (checked, refused) for text in (result.stdout, result.stderr)]
    assert not leaks(said, PASSWORD, SENTINEL_PASSWORD)
