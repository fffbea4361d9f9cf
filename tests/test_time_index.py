"""The chunked time indexes (tracker.store.time_index): whatever adds, moves and drops arrive, in whatever order and
from however many writers, the index holds what one sorted set would, reads it back in order from any point in
either direction, splits its chunks so each stays compact, and drops the chunks it empties."""

from __future__ import annotations

import random
import threading

import pytest

from tests.support import as_sorted_sets, refused_as_behind, tracker
from tracker.store import Store, keys
from tracker.store import time_index as ti

NAME = "resp"
BASE_MS = 1_764_000_000_000


def chunks(store: Store) -> list[str]:
    return store.redis.zrangebylex(keys.time_index_directory(NAME), "-", "+")


def read(store: Store, low: float | str = "-inf", high: float | str = "+inf", newest_first: bool = False,
         after: tuple[int, str] | None = None) -> list[tuple[str, int]]:
    return [row for found in ti.window(store.redis, NAME, low, high, newest_first, after) for row in found]


def in_order(model: dict[str, int], newest_first: bool = False) -> list[tuple[str, int]]:
    rows = sorted(model.items(), key=lambda row: (row[1], row[0]))
    return rows[::-1] if newest_first else rows


def test_random_adds_moves_and_drops_read_back_as_a_sorted_set_would(store: Store) -> None:
    rng = random.Random(9)
    model: dict[str, int] = {}
    sids = [f"{n:04d}" + "".join(rng.choice("abcdefgh234567") for _ in range(16)) for n in range(900)]
    for round_ in range(12):
        adds, drops = {}, []
        for sid in rng.sample(sids, 150):
            at = BASE_MS + rng.choice([rng.randrange(0, 10**8), (round_ * 7) % 50 * 1000])  # many ties too
            if sid in model and rng.random() < 0.3:
                drops.append((sid, model.pop(sid)))
            else:
                if sid in model:
                    drops.append((sid, model[sid]))  # a move: dropped where it was, added where it goes
                adds[sid] = at
                model[sid] = at
        ti.place(store, NAME, adds=list(adds.items()), drops=drops)
        ti.place(store, NAME, adds=list(adds.items()), drops=drops)  # placed again: nothing changes
        assert read(store) == in_order(model)
        assert ti.count(store.redis, NAME) == len(model)
    assert read(store, newest_first=True) == in_order(model, newest_first=True)
    times = sorted(model.values())
    low, high = times[len(times) // 4], times[3 * len(times) // 4]
    assert read(store, low, high) == [row for row in in_order(model) if low <= row[1] <= high]
    assert read(store, low, high, newest_first=True) == [row for row in in_order(model, True) if low <= row[1] <= high]
    middle = in_order(model)[len(model) // 2]
    after = (middle[1], middle[0])
    assert read(store, after=after) == in_order(model)[len(model) // 2 + 1:]
    assert read(store, newest_first=True, after=after) == in_order(model, True)[len(model) - len(model) // 2:]
    assert ti.first_times(store.redis, [NAME])[NAME] == times[0]
    sizes = [store.redis.zcard(ti._chunk_of(NAME, member)) for member in chunks(store)]
    assert len(sizes) > 3 and max(sizes) <= ti.CHUNK
    encodings = {store.redis.object("encoding", ti._chunk_of(NAME, member)) for member in chunks(store)[1:]}
    assert encodings <= {"listpack", "ziplist"}, encodings


def test_entries_added_in_time_order_leave_full_chunks_behind(store: Store) -> None:
    rows = [(f"s{n:05d}", BASE_MS + n) for n in range(1000)]
    for start in range(0, len(rows), 100):
        ti.place(store, NAME, adds=rows[start:start + 100])
    sizes = [store.redis.zcard(ti._chunk_of(NAME, member)) for member in chunks(store)]
    assert sizes[:-1] == [ti.CHUNK] * (len(sizes) - 1)
    assert read(store) == rows


def test_dropping_everything_leaves_only_the_first_empty_chunk_and_a_count_of_nothing(store: Store) -> None:
    rows = [(f"s{n:05d}", BASE_MS + n * 10) for n in range(400)]
    ti.place(store, NAME, adds=rows)
    ti.place(store, NAME, drops=rows[::-1])
    assert chunks(store) == [ti.FIRST]
    assert ti.count(store.redis, NAME) == 0 and read(store) == [] and ti.first_times(store.redis, [NAME])[NAME] is None
    assert ti.drop_anywhere(store, NAME, ["s00001"]) == 0


@pytest.mark.parametrize("chunks_read", [1, ti.CHUNKS_READ])
def test_the_first_time_skips_an_emptied_first_chunk(store: Store, monkeypatch: pytest.MonkeyPatch,
                                                      chunks_read: int) -> None:
    monkeypatch.setattr(ti, "CHUNKS_READ", chunks_read)  # 1: the walk past a round trip's chunks
    rows = [(f"s{n:05d}", BASE_MS + n * 10) for n in range(600)]
    ti.place(store, NAME, adds=rows)
    assert ti.first_times(store.redis, [NAME, "other"]) == {NAME: BASE_MS, "other": None}
    first_chunk = store.redis.zrange(ti._chunk_of(NAME, ti.FIRST), 0, -1)
    ti.place(store, NAME, drops=rows[:len(first_chunk) + 5])
    assert store.redis.zcard(ti._chunk_of(NAME, ti.FIRST)) == 0 and len(chunks(store)) > 2
    assert ti.first_times(store.redis, [NAME])[NAME] == rows[len(first_chunk) + 5][1] == read(store)[0][1]


def test_an_add_of_only_new_entries_leaves_a_held_sid_where_it_is(store: Store) -> None:
    ti.place(store, NAME, adds=[("a", BASE_MS), ("b", BASE_MS + 10)])
    ti.place(store, NAME, adds=[("a", BASE_MS + 5), ("c", BASE_MS + 20)], only_new=True)
    assert read(store) == [("a", BASE_MS), ("b", BASE_MS + 10), ("c", BASE_MS + 20)]
    assert ti.count(store.redis, NAME) == 3
    ti.place(store, NAME, adds=[("a", BASE_MS + 5)])  # a plain add moves it
    assert read(store) == [("a", BASE_MS + 5), ("b", BASE_MS + 10), ("c", BASE_MS + 20)]


def test_a_drop_at_another_time_than_indexed_leaves_the_entry(store: Store) -> None:
    ti.place(store, NAME, adds=[("a", BASE_MS)])
    ti.place(store, NAME, drops=[("a", BASE_MS + 1)])
    assert read(store) == [("a", BASE_MS)]


def test_an_entry_of_unknown_time_is_found_and_dropped(store: Store) -> None:
    rows = [(f"s{n:05d}", BASE_MS + n * 10) for n in range(500)]
    ti.place(store, NAME, adds=rows)
    assert ti.drop_anywhere(store, NAME, ["s00007", "s00300", "nope"]) == 2
    assert [sid for sid, _ in read(store)] == [sid for sid, _ in rows if sid not in ("s00007", "s00300")]


@pytest.mark.parametrize("writers", [4])
def test_concurrent_writers_leave_every_entry_once(store: Store, writers: int) -> None:
    per_writer = {w: [(f"w{w}-{n:04d}", BASE_MS + random.Random(w * 1000 + n).randrange(10**6))
                      for n in range(400)] for w in range(writers)}
    failures: list[BaseException] = []

    def write(rows: list[tuple[str, int]]) -> None:
        try:
            for start in range(0, len(rows), 25):
                ti.place(store, NAME, adds=rows[start:start + 25])
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(rows,)) for rows in per_writer.values()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    model = {sid: at for rows in per_writer.values() for sid, at in rows}
    assert read(store) == in_order(model)
    assert ti.count(store.redis, NAME) == len(model)


def test_upgrade_store_moves_layout_7s_sorted_sets_into_chunks_and_the_reads_see_the_same(
        scored: None, store: Store, env: dict[str, str], client: object) -> None:
    auth = {"Authorization": f"Bearer {store.create_key('lead')}"}
    before = client.get("/api/v1/export/responses.csv", headers=auth)  # type: ignore[attr-defined]
    assert before.status_code == 200 and before.get_data(as_text=True).count("\n") == 3
    held = as_sorted_sets(store, extra=700)
    store.redis.set(keys.LAYOUT, keys.LAYOUT_RANKED)
    refused_as_behind(env)
    upgraded = tracker(env, "upgrade-store")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "1404 entries of the time indexes moved into chunks" in upgraded.stdout
    assert store.redis.get(keys.LAYOUT) == keys.LAYOUT_VERSION
    assert not store.redis.exists(keys.RESPONSES) and not store.redis.exists(keys.SENT)
    for name, rows in held.items():
        assert [row for found in ti.window(store.redis, name) for row in found] == rows
        assert ti.count(store.redis, name) == len(rows)
    after = client.get("/api/v1/export/responses.csv", headers=auth)  # type: ignore[attr-defined]
    assert after.get_data(as_text=True) == before.get_data(as_text=True)
    again = tracker(env, "upgrade-store")
    assert again.returncode == 0 and "0 entries of the time indexes moved" in again.stdout
    assert "already" in again.stdout


def test_windows_past_either_end_of_time_read_what_they_cover(store: Store) -> None:
    rows = [(f"s{n:05d}", BASE_MS + n * 10) for n in range(300)]
    ti.place(store, NAME, adds=rows)
    assert read(store, -10**18, 10**20) == rows
    assert read(store, -10**18, 10**20, newest_first=True) == rows[::-1]
    assert read(store, 10**20, "+inf") == [] and read(store, "-inf", -1, newest_first=True) == []
    assert read(store, BASE_MS + 2980, 10**20) == rows[-2:]


def test_a_call_short_of_fresh_chunks_adds_what_it_can_and_the_writer_adds_the_rest(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    evens = [(f"e{n:05d}", BASE_MS + 2 * n) for n in range(ti.CHUNK)]  # one full chunk
    ti.place(store, NAME, adds=evens)
    monkeypatch.setattr(ti, "FRESH_FIRST", 1)
    monkeypatch.setattr(ti, "FRESH_PER", 10_000)  # one fresh chunk a call: every split after the first waits
    odds = [(f"o{n:05d}", BASE_MS + 2 * n + 1) for n in range(ti.CHUNK)]
    ti.place(store, NAME, adds=odds)
    assert read(store) == sorted(evens + odds, key=lambda row: row[1])
    assert ti.count(store.redis, NAME) == 2 * ti.CHUNK
    sizes = [store.redis.zcard(ti._chunk_of(NAME, member)) for member in chunks(store)]
    assert len(sizes) >= 3 and max(sizes) <= ti.CHUNK
