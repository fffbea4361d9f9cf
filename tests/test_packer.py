"""The store's connections pack commands with hiredis at once (tracker.store.base._Packer): the same bytes on the
wire as redis-py's own packer, the same refusal of what Redis cannot take."""

from __future__ import annotations

import pytest
import redis
from redis.cluster import RedisCluster
from redis.connection import HiredisRespSerializer  # type: ignore[attr-defined]

from tracker.store import Store
from tracker.store.base import _PackedConnection, _Packer

COMMANDS = [
    ("GET", "t:test:packer"),
    ("HMGET", "t:{a:agent:x}:rollup", *(f"2026-11-{day:02d}|n" for day in range(1, 31))),
    ("SET", "t:test:packer", "Åse 😀 \x00 \r\n"),
    ("SET", b"t:test:bytes", b"\xff\x00raw"),
    ("ZADD", "t:test:z", 1.5, "a", 10**18, "b", -0.1, "c", float("inf"), "d"),
    ("SCRIPT EXISTS", "0" * 40),
    ("EVAL", "return 1", 0),
]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda args: str(args[0]))
def test_a_command_packs_to_the_bytes_redis_py_packs_it_to(args: tuple[object, ...]) -> None:
    assert b"".join(_Packer().pack(*args)) == b"".join(HiredisRespSerializer().pack(*args))


def test_an_argument_redis_cannot_take_is_refused_as_redis_py_refuses_it(store: Store) -> None:
    with pytest.raises(redis.DataError):
        _Packer().pack("SET", "t:test:packer", None)
    with pytest.raises(redis.DataError):
        store.redis.set("t:test:packer", None)  # type: ignore[arg-type]
    assert store.redis.ping()  # nothing half-sent: the connection still answers


@pytest.mark.parametrize("store_kind", ["standalone", pytest.param("cluster", marks=pytest.mark.cluster)],
                         indirect=True)
def test_values_come_back_as_they_were_written(store: Store) -> None:
    if isinstance(store.redis, RedisCluster):  # its nodes' connections: the class that brings the packer
        node = store.redis.get_default_node()
        assert node is not None and node.redis_connection is not None
        pool = node.redis_connection.connection_pool
        assert pool.connection_class is _PackedConnection
        assert isinstance(pool.make_connection()._command_packer, _Packer)
    else:
        assert isinstance(store.redis.connection_pool.connection_kwargs.get("command_packer"), _Packer)
    text = "Åse 😀 \x00 \r\n*3\r\n"  # what the protocol itself uses, inside a value
    store.redis.set("t:test:{p}:packer", text)
    store.redis.zadd("t:test:{p}:z", {"a": 1.5, "b": 10**15, "c": -0.1})
    pipe = store.redis.pipeline(transaction=False)
    pipe.get("t:test:{p}:packer")
    pipe.zrange("t:test:{p}:z", 0, -1, withscores=True)
    assert pipe.execute() == [text, [("c", -0.1), ("a", 1.5), ("b", 1e15)]]
    assert store.redis.script_exists("0" * 40) == [False]  # a command of two words
