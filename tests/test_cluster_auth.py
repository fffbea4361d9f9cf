"""A Redis Cluster whose nodes have a password (each node's requirepass, and masterauth for its replicas), as managed
and self-run clusters in production have: the whole loop runs on it over real processes, /readyz asks every node for
its state with the password, and a wrong or missing password stops each process at start in one line naming
TRACKER_REDIS_URL, with no password shown."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.cluster import running_cluster
from tests.support import make_env
from tests.test_operator_errors import all_at_once, one_line_naming
from tests.test_redis_credentials import Loop, leaks

pytestmark = pytest.mark.e2e
PASSWORD = "cluster/pw-4b1e"  # a / must be percent-encoded in the URL
WRONG = "wrong-pw-8c2d"


def test_the_whole_loop_runs_on_a_cluster_with_a_password_and_a_wrong_or_missing_one_is_one_line(
        tmp_path, redis_url, smtp):
    with running_cluster(tmp_path / "cluster", replicas=0, password=PASSWORD) as cluster:
        env = make_env(cluster.url, smtp.port, TRACKER_BROKER_URL=redis_url)  # type: ignore[attr-defined]
        node = cluster.nodes[0].address
        wrong = {**env, "TRACKER_REDIS_URL": cluster.url.replace(quote(PASSWORD, safe=""), WRONG)}
        missing = {**env, "TRACKER_REDIS_URL": f"redis://{node}"}
        (checked, _), (refused, _), (unasked, _) = all_at_once((env, ("check",)), (wrong, ("web",)),
                                                              (missing, ("worker",)))
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert f"ok  Redis: redis://:***@{node} answers (Redis " in checked.stdout, checked.stdout
        assert "a Redis Cluster: " in checked.stdout, checked.stdout
        assert one_line_naming(refused, f"TRACKER_REDIS_URL: the Redis at {node} refused the credentials in the URL "
                                        "(the default user and its password)"), refused.stderr
        assert one_line_naming(unasked, f"TRACKER_REDIS_URL: the Redis at {node} wants a password, and the URL gives "
                                        "none"), unasked.stderr
        with Loop(env, tmp_path) as loop:
            card = loop.run(smtp)
            assert card["responses"] == 1 and card["last_response"]["rating"] == 4
            ready = loop.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["cluster"]["slots_ok"] == 16384 and ready.json()["cluster"]["masters"] == 3
    outputs = [*loop.outputs(), *(text for result in (checked, refused, unasked) for text in (result.stdout,
                                                                                             result.stderr))]
    assert not leaks(outputs, PASSWORD, quote(PASSWORD, safe=""), WRONG)
    said = "\n".join(loop.outputs()[:3])
    assert "Traceback" not in said and "CRITICAL" not in said, said[-3000:]
