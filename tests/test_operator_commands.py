"""Every command an operator runs against the store, one after another on what the loop made, as processes, on a
standalone Redis and on a Redis Cluster: each does its work and says so, and none ends in a traceback.

Each command has its own tests (on a standalone Redis, with the slot guard over every command sent); this runs
them all on a real cluster too, where a key of another slot, a keyspace walk or a script's undeclared key would
fail where the guard cannot see.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support import World, drain, tracker


def _run(env: dict[str, str], *args: str, code: int = 0) -> str:
    done = tracker(env, *args)
    assert done.returncode == code and "Traceback" not in done.stderr, (args, done.returncode, done.stderr)
    return done.stdout


@pytest.mark.timeout(300)
def test_every_operator_command_does_its_work_on_the_store(world: World, store: Any, env: dict[str, str],
                                                          settings: Any, tmp_path: Path) -> None:
    world.solved_and_answered("T-1", "kari@example.no", 1, comment="slow")
    world.solved_and_answered("T-2", "per@example.no", 5)
    world.order("O-1", "per@example.no", "120.50")
    ratings = tmp_path / "ratings.csv"
    ratings.write_text("email,rating,scale,answered_at,ticket,source,agent,team,comment\n"
                       "ola@example.no,4,csat5,2026-11-01T10:00:00Z,Z-1,zendesk,a1,billing,ok\n"
                       "ola@example.no,9,csat5,2026-11-01T10:00:00Z,Z-2,zendesk,a1,billing,\n")
    log = tmp_path / "log.jsonl"

    assert "It is shown once" in _run(env, "api-key", "create", "--name", "lead")
    assert _run(env, "api-key", "list").startswith("lead\t")
    assert "AT RISK" in _run(env, "score", "kari@example.no")
    assert "kari@example.no" in _run(env, "top", "--at-risk") and "per@" not in _run(env, "top", "--at-risk")
    assert json.loads(_run(env, "export", "per@example.no"))["customer"] == "per@example.no"
    assert "is suppressed" in _run(env, "suppress", "add", "x@example.no")
    assert _run(env, "suppress", "list").split() == ["x@example.no"]
    assert "may get surveys again" in _run(env, "suppress", "remove", "x@example.no")
    assert "1 rating would be imported" in _run(env, "import-ratings", str(ratings), "--dry-run", code=1)
    assert "1 rating imported" in _run(env, "import-ratings", str(ratings), code=1)  # the bad row is named: exit 1
    drain(store, settings)
    assert "responses      1 of 1" in _run(env, "score", "ola@example.no")
    assert _run(env, "export-log", str(log)).startswith("Wrote 3 events, 0 unanswered surveys, 0 skipped surveys, "
                                                        "0 failed surveys and 3 answers.")
    assert _run(env, "dead-letters").startswith("0 parked events")
    assert "Put 0 parked events back" in _run(env, "dead-letters", "--requeue")
    assert "No delivery attempts recorded" in _run(env, "deliveries")
    assert _run(env, "cases").strip() == "No cases."  # the answers' notices were not dispatched here
    cards = [_run(env, "score", email) for email in ("kari@example.no", "per@example.no", "ola@example.no")]
    assert "Rebuilt every aggregate from 3 stored responses" in _run(env, "rebuild-scores")
    assert _run(env, "upgrade-store").startswith("Folded 0 answers")
    assert "answers to count" in _run(env, "replay", str(log), "--dry-run")
    assert _run(env, "replay", str(log)).startswith("Appended")
    drain(store, settings)
    # The rebuild and the replay of what was already counted changed no card: nothing counted twice.
    assert [_run(env, "score", email) for email in ("kari@example.no", "per@example.no", "ola@example.no")] == cards
    assert _run(env, "erase", "kari@example.no").startswith("Erased kari@example.no: 1 profile")
    gone = tracker(env, "score", "kari@example.no")
    assert gone.returncode == 1 and gone.stderr.strip() == "tracker: no customer 'kari@example.no' is known"
    assert "ok  Redis" in _run(env, "check")
