"""`tracker export-log` then `tracker replay` into an empty Redis carries the API keys: every integration's and every
lead's key works against the new install with the scopes it had (a read-only key still cannot work a case), a revoked
key stays revoked, dashboard sessions are not carried (leads sign in again), replaying twice changes nothing, and a
line that does not read or clashes with a key there is reported with its number."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support import tracker
from tests.test_cases import answer_data, deliver
from tests.test_dashboard import sign_in
from tests.test_migrations import dry_replay, other_db, replayed
from tracker.store import Store, keys
from tracker.store.apikeys import digest
from tracker.web.app import create_app

KARI = "kari@example.no"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def keys_and_a_case(world: Any, store: Store) -> tuple[dict[str, str], str]:
    """An admin key, a read-only one, a revoked one and one whose revoke was cut short; a case to work. Return the
    keys by name and the case's id."""
    made = {"ops": store.create_key("ops"), "desk": store.create_key("desk", ("read",)),
            "gone": store.create_key("gone"), "half": store.create_key("half")}
    assert store.revoke_key("gone")
    store.redis.delete(keys.api_key_hash(digest(made["half"])))  # a revoke cut short: listed, but works nowhere
    sid = world.solved_and_answered("T-1", KARI, 1, "Slow")
    assert deliver(store, world.settings, answer_data(sid, KARI, 1, False)).status == "delivered"
    return made, keys.case_id(sid, KARI)


def stored_keys(store: Store) -> dict[str, Any]:
    """Every key of the API keys (names, digests, the carried mark), with what it holds."""
    held: dict[str, Any] = {}
    for key in store.redis.scan_iter("t:apikey*"):
        kind = store.redis.type(key)
        held[key] = (store.redis.hgetall(key) if kind == "hash" else sorted(store.redis.smembers(key))
                     if kind == "set" else store.redis.get(key))
    return held


def export(env: dict[str, str], path: Path) -> str:
    exported = tracker(env, "export-log", str(path))
    assert exported.returncode == 0, exported.stderr
    return exported.stdout


def test_every_api_key_moves_and_works_against_the_new_install_with_its_scopes(
        world, store, client, env, redis_server, tmp_path: Path):
    made, case_id = keys_and_a_case(world, store)
    assert sign_in(client, made["desk"]).status_code == 303  # a dashboard session of the old install
    listed = tracker(env, "api-key", "list").stdout
    path = tmp_path / "export.jsonl"
    assert "and 2 API keys (as stored: a digest, never the key)." in export(env, path)
    text = path.read_text()
    assert all(key not in text for key in made.values())  # the keys themselves are never stored, never exported

    other_env, other_settings, other = replayed(env, redis_server, path, 3)
    moved = create_app(other_settings, other, enqueue=lambda *args: None).test_client()
    for name in ("ops", "desk"):
        assert moved.get("/api/v1/cases", headers=bearer(made[name])).status_code == 200, name
        assert moved.get(f"/api/v1/cases/{case_id}", headers=bearer(made[name])).json["id"] == case_id
    read_only = moved.patch(f"/api/v1/cases/{case_id}", headers=bearer(made["desk"]), json={"status": "contacted"})
    assert read_only.status_code == 403 and "'admin' scope" in read_only.get_data(as_text=True)
    worked = moved.patch(f"/api/v1/cases/{case_id}", headers=bearer(made["ops"]), json={"status": "contacted"})
    assert worked.status_code == 200 and worked.json["status"] == "contacted"
    for name in ("gone", "half"):  # revoked keys stay revoked
        assert moved.get("/api/v1/cases", headers=bearer(made[name])).status_code == 401, name
    assert tracker(other_env, "api-key", "list").stdout == "".join(
        line + "\n" for line in listed.splitlines() if not line.startswith("half\t"))

    # Sessions are not carried: the new install knows none, and a lead signs in again with the same key.
    assert other.redis.keys(keys.dashboard_session("*")) == []
    assert moved.get("/dashboard").headers["Location"].endswith("/dashboard/login")
    assert sign_in(moved, made["desk"]).status_code == 303 and moved.get("/dashboard").status_code == 200


def test_replaying_the_keys_twice_changes_nothing_a_key_revoked_since_stays_revoked_and_a_dry_run_writes_nothing(
        world, store, env, redis_server, tmp_path: Path):
    made, _ = keys_and_a_case(world, store)
    path = tmp_path / "export.jsonl"
    export(env, path)
    dry = dry_replay(env, redis_server, path, 4)
    assert "  API keys to restore      2\n" in dry, dry

    other_env, other_settings, other = replayed(env, redis_server, path, 4)
    before = stored_keys(other)
    assert len(before) == 4  # the names, the two digests, the mark that they were carried
    again = tracker(other_env, "replay", str(path))
    assert again.returncode == 0, again.stderr
    assert "Restored 0 recovery cases, 0 unsubscribes and 0 suppressed addresses (3 already there)." in again.stdout
    assert stored_keys(other) == before

    assert tracker(other_env, "api-key", "revoke", "ops").returncode == 0
    assert tracker(other_env, "replay", str(path)).returncode == 0
    moved = create_app(other_settings, other, enqueue=lambda *args: None).test_client()
    assert moved.get("/api/v1/cases", headers=bearer(made["ops"])).status_code == 401
    assert moved.get("/api/v1/cases", headers=bearer(made["desk"])).status_code == 200


def test_a_bad_or_clashing_key_line_is_reported_with_its_number_and_the_others_still_apply(
        world, store, env, redis_server, tmp_path: Path):
    made, _ = keys_and_a_case(world, store)
    path = tmp_path / "export.jsonl"
    export(env, path)
    good = [line for line in map(json.loads, path.read_text().splitlines()) if line["type"] == "apikey.recorded"]
    assert [line["name"] for line in good] == ["desk", "ops"]
    assert good[0]["scopes"] == ["read"] and good[1]["scopes"] == ["read", "admin"]
    assert good[0]["created_at"].endswith("Z") and "key" not in good[0]
    write_scope = {**good[0], "name": "writer", "scopes": ["write"]}
    bare = {"type": "apikey.recorded", "name": "bare", "digest": made["desk"], "scopes": ["read"],
            "created_at": good[0]["created_at"]}  # the key itself, not its digest
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(json.dumps(line) for line in (write_scope, bare, *good)) + "\n")

    other_env, other_settings, other = other_db(redis_server, env, 5)
    mine = other.create_key("ops")  # the new install has a key of that name already: the carried one would not work
    result = tracker(other_env, "replay", str(bad))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    errors = result.stderr.splitlines()
    assert [line.split(": ")[0] for line in errors] == [f"{bad}:{n}" for n in (1, 2, 4)], errors
    assert "not a valid apikey.recorded line" in errors[0] and "scopes" in errors[0]
    assert "digest" in errors[1]
    assert "another API key is named 'ops' here" in errors[2]
    moved = create_app(other_settings, other, enqueue=lambda *args: None).test_client()
    assert moved.get("/api/v1/cases", headers=bearer(made["desk"])).status_code == 200
    assert moved.get("/api/v1/cases", headers=bearer(made["ops"])).status_code == 401
    assert moved.get("/api/v1/cases", headers=bearer(mine)).status_code == 200


def test_a_webhook_carrying_an_api_key_line_is_ignored(world, store, env, post_event, tmp_path: Path):
    keys_and_a_case(world, store)
    path = tmp_path / "export.jsonl"
    export(env, path)
    line = next(line for line in map(json.loads, path.read_text().splitlines()) if line["type"] == "apikey.recorded")
    length = store.lag().length
    response = post_event("standard", {**line, "name": "intruder"})
    assert (response.status_code, response.json) == (200, {"status": "ignored"})
    assert store.lag().length == length and [row["name"] for row in store.list_keys()] == ["desk", "half", "ops"]
