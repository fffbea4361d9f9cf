"""A guard over the suite's Redis traffic: a command or MULTI/EXEC transaction with keys of two hash slots fails
the running test, naming the command (a script by name) and its keys. A Redis Cluster refuses such a command
(CROSSSLOT), so the guard finds on a standalone Redis what would break on a cluster.

It is on for every run of the suite (conftest registers the plugin); TRACKER_SLOT_GUARD=0 turns it off. It watches
the store's clients (StoreClient and its round trips, StoreCluster and their pipelines) in the test process and,
through a sitecustomize put on PYTHONPATH, in every Python process the tests start (tracker worker, beat, web,
CLI); those append what they find to a file that the guard reads after each phase of each test.

Keys are found the way redis-py's cluster client finds them: the numkeys keys of EVAL/EVALSHA, the streams of
XREAD/XREADGROUP, and COMMAND's key positions (COMMAND GETKEYS for commands with movable keys) for the rest.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from redis._parsers.commands import CommandsParser
from redis.cluster import RedisCluster, TransactionStrategy
from redis.crc import key_slot

from tracker.store import base

ENABLE = "TRACKER_SLOT_GUARD"
REPORT = "TRACKER_SLOT_GUARD_REPORT"  # where processes started by the tests append what they find
LUA = Path(base.__file__).parent / "lua"
SCRIPTED = ("EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO")


def enabled() -> bool:
    return os.environ.get(ENABLE, "1").strip() not in ("", "0")


def slot(key: Any) -> int:
    raw = key if isinstance(key, bytes) else str(key).encode("utf-8")
    return int(key_slot(raw))


@dataclass(frozen=True)
class Violation:
    """One command or transaction whose keys fall in more than one hash slot."""

    what: str
    keys: tuple[str, ...]
    slots: tuple[int, ...]
    where: str = "test process"

    def line(self) -> str:
        shown = ", ".join(f"{key} (slot {slot(key)})" for key in self.keys[:12])
        more = f" and {len(self.keys) - 12} more" if len(self.keys) > 12 else ""
        return f"{self.what} touches {len(set(self.slots))} slots [{self.where}]: {shown}{more}"


class Keys:
    """Find the keys of a command with COMMAND's table, read once per process from the first server seen."""

    def __init__(self) -> None:
        self.parser: CommandsParser | None = None
        self.scripts = {hashlib.sha1(path.read_bytes()).hexdigest(): path.stem  # noqa: S324 - Redis's script names
                        for path in LUA.glob("*.lua")}
        self._plain: dict[Any, redis.Redis] = {}

    def plain(self, client: Any) -> redis.Redis:
        """Return an unguarded client to the same server (for COMMAND and COMMAND GETKEYS)."""
        if isinstance(client, RedisCluster):
            connection: redis.Redis = client.get_default_node().redis_connection
            return connection
        kwargs = dict(client.connection_pool.connection_kwargs)
        address = (kwargs.get("host"), kwargs.get("port"), kwargs.get("path"))
        if address not in self._plain:
            kwargs.pop("retry", None)
            self._plain[address] = redis.Redis(connection_pool=redis.ConnectionPool(
                connection_class=client.connection_pool.connection_class, **kwargs))
        return self._plain[address]

    def of(self, client: Any, args: Sequence[Any]) -> list[Any]:
        name = str(args[0]).upper()
        if name in SCRIPTED:
            return list(args[3:3 + int(args[2])]) if len(args) > 2 else []
        if name in ("XREAD", "XREADGROUP"):
            upper = [str(arg).upper() for arg in args]
            if "STREAMS" not in upper:
                return []
            rest = list(args[upper.index("STREAMS") + 1:])
            return rest[:len(rest) // 2]
        words = [arg if isinstance(arg, (str, bytes)) else str(arg) for arg in args]  # SCAN 0, EXPIRE k 60
        try:
            plain = self.plain(client)
            if self.parser is None:
                self.parser = CommandsParser(plain)
            return list(self.parser.get_keys(plain, *words) or [])
        except redis.RedisError:  # the server is down, or the command is unknown: nothing to judge
            return []

    def name(self, args: Sequence[Any]) -> str:
        name = str(args[0]).upper()
        if name in ("EVALSHA", "EVALSHA_RO") and len(args) > 1:
            return f"script {self.scripts.get(str(args[1]), str(args[1])[:12])} (EVALSHA)"
        if name in ("EVAL", "EVAL_RO") and len(args) > 1:
            sha = hashlib.sha1(str(args[1]).encode("utf-8")).hexdigest()  # noqa: S324 - Redis's script names
            return f"script {self.scripts.get(sha, 'inline')} (EVAL)"
        return name

    def close(self) -> None:
        for client in self._plain.values():
            client.close()
        self._plain.clear()


class Guard:
    """Judge the store's commands and transactions; keep what crosses slots, or append it to a report file."""

    def __init__(self, report: str | None = None):
        self.keys = Keys()
        self.found: list[Violation] = []
        self.report = report
        self.where = "test process" if report is None else f"{Path(sys.argv[0]).name} pid {os.getpid()}"
        self._lock = threading.Lock()

    def judge(self, client: Any, commands: Sequence[Sequence[Any]], transaction: bool,
              watched: Sequence[Any] = ()) -> None:
        """Judge commands sent together: each alone, or (a MULTI/EXEC transaction) all of them and the watched keys."""
        groups = [list(commands)] if transaction else [[command] for command in commands]
        for group in groups:
            keys = [key for command in group for key in self.keys.of(client, command)]
            keys += list(watched) if transaction else []
            slots = [slot(key) for key in keys]
            if len(set(slots)) < 2:
                continue
            names = [self.keys.name(command) for command in group]
            what = names[0] if len(group) == 1 and not watched else f"MULTI/EXEC [{', '.join(names)}]"
            self._keep(Violation(what, tuple(str(key) for key in keys), tuple(slots), self.where))

    def _keep(self, violation: Violation) -> None:
        if getattr(_expected, "active", False):
            return
        with self._lock:
            if self.report is None:
                self.found.append(violation)
                return
            with open(self.report, "a", encoding="utf-8") as out:
                out.write(json.dumps({"what": violation.what, "keys": violation.keys, "slots": violation.slots,
                                      "where": violation.where}) + "\n")


_installed: Guard | None = None
_expected = threading.local()


@contextmanager
def crossing_expected() -> Iterator[None]:
    """Let a test send commands across slots on purpose (to see how a cluster refuses them) in this thread."""
    _expected.active = True
    try:
        yield
    finally:
        _expected.active = False
_originals: dict[tuple[type, str], Any] = {}


def _patch(cls: type, name: str, make: Any) -> None:
    original = cls.__dict__[name]
    _originals[(cls, name)] = original
    setattr(cls, name, make(original))


def install(report: str | None = None) -> Guard:
    """Wrap the store's clients and pipelines so that every command and transaction they send is judged first."""
    global _installed
    if _installed is not None:
        return _installed
    guard = _installed = Guard(report)

    def command(original: Any) -> Any:
        def execute_command(self: Any, *args: Any, **options: Any) -> Any:
            guard.judge(self, [args], transaction=False)
            return original(self, *args, **options)
        return execute_command

    def pipeline_command(original: Any) -> Any:
        def execute_command(self: Any, *args: Any, **options: Any) -> Any:
            if str(args[0]).upper() == "WATCH":
                self.__dict__.setdefault("_slot_guard_watched", []).extend(args[1:])
            return original(self, *args, **options)
        return execute_command

    def pipeline_execute(original: Any) -> Any:
        def execute(self: Any, raise_on_error: bool = True) -> Any:
            watched = self.__dict__.pop("_slot_guard_watched", [])
            commands = [args for args, _ in self.command_stack]
            guard.judge(self, commands, transaction=self.transaction or self.explicit_transaction, watched=watched)
            return original(self, raise_on_error)
        return execute

    def cluster_pipeline_execute(original: Any) -> Any:
        def execute(self: Any, raise_on_error: bool = True) -> Any:
            strategy = self._execution_strategy
            commands = [command.args for command in strategy.command_queue]
            guard.judge(self, commands, transaction=isinstance(strategy, TransactionStrategy))
            return original(self, raise_on_error)
        return execute

    def round_trip(original: Any) -> Any:
        def trip(self: Any, commands: Any) -> Any:
            for args in commands:  # sent together without a transaction: each command is judged on its own
                guard.judge(self, [args], transaction=False)
            return original(self, commands)
        return trip

    _patch(base.StoreClient, "execute_command", command)
    _patch(base.StoreClient, "round_trip", round_trip)
    _patch(base._Pipeline, "execute_command", pipeline_command)
    _patch(base._Pipeline, "execute", pipeline_execute)
    _patch(base.StoreCluster, "execute_command", command)
    _patch(base._ClusterPipeline, "execute", cluster_pipeline_execute)
    return guard


def uninstall() -> None:
    global _installed
    for (cls, name), original in _originals.items():
        setattr(cls, name, original)
    _originals.clear()
    if _installed is not None:
        _installed.keys.close()
    _installed = None


SITECUSTOMIZE = '''"""Written by tests/slot_guard.py: judge the Redis traffic of the processes the tests start."""
import os

if os.environ.get("TRACKER_SLOT_GUARD_REPORT"):
    from tests import slot_guard

    slot_guard.install(report=os.environ["TRACKER_SLOT_GUARD_REPORT"])
'''


class Plugin:
    """The pytest side: judge in this process and the processes it starts; fail a phase that crossed slots."""

    def __init__(self, root: Path):
        self.guard = install()
        self.workdir = Path(tempfile.mkdtemp(prefix="slot-guard-"))
        self.report = self.workdir / "violations.jsonl"
        self.report.touch()
        (self.workdir / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
        self._saved = {name: os.environ.get(name) for name in ("PYTHONPATH", REPORT)}
        os.environ["PYTHONPATH"] = os.pathsep.join([str(self.workdir), str(root),
                                                    *filter(None, [os.environ.get("PYTHONPATH")])])
        os.environ[REPORT] = str(self.report)
        self._offset = 0

    def _new(self) -> list[str]:
        found = [violation.line() for violation in self.guard.found]
        self.guard.found.clear()
        with open(self.report, "rb") as report:
            report.seek(self._offset)
            for line in report:
                if not line.endswith(b"\n"):
                    break  # a process is still writing it: read it next time
                entry = json.loads(line)
                found.append(Violation(entry["what"], tuple(entry["keys"]), tuple(entry["slots"]),
                                       entry["where"]).line())
                self._offset += len(line)
        return found

    @contextmanager
    def phase(self, phase: str) -> Iterator[None]:
        import pytest

        self._new()  # what came in between (a process outliving its test) belongs to no phase
        try:
            yield
        except BaseException as exc:
            found = self._new()
            if found:
                exc.add_note(f"slot guard: {len(found)} command(s) crossing hash slots during {phase}:\n  "
                             + "\n  ".join(found))
            raise
        found = self._new()
        if found:
            pytest.fail(f"{len(found)} Redis command(s) crossing hash slots during {phase} "
                        f"(a Redis Cluster refuses them: CROSSSLOT):\n  " + "\n  ".join(found), pytrace=False)

    def close(self) -> None:
        uninstall()
        for name, value in self._saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(self.workdir, ignore_errors=True)


def make_plugin(root: Path) -> Any:
    """Return the pytest plugin object (pytest is imported here, never in the processes the tests start)."""
    import pytest

    guard = Plugin(root)

    class SlotGuardPlugin:
        @pytest.hookimpl(wrapper=True)
        def pytest_runtest_setup(self, item: Any) -> Any:
            with guard.phase("setup"):
                return (yield)

        @pytest.hookimpl(wrapper=True)
        def pytest_runtest_call(self, item: Any) -> Any:
            with guard.phase("the test"):
                return (yield)

        @pytest.hookimpl(wrapper=True)
        def pytest_runtest_teardown(self, item: Any) -> Any:
            with guard.phase("teardown"):
                return (yield)

        def pytest_unconfigure(self) -> None:
            guard.close()

        def pytest_report_header(self) -> str:
            return f"slot guard: on ({ENABLE}=1); processes the tests start report to {guard.report}"

    return SlotGuardPlugin()
