"""export-log and replay of recovery cases and what their counters hold: long labels, the numbers under one filter
after retention, and a case changed while the export walks the cases (tracker.ingest.case_lines)."""

from __future__ import annotations

import io
import time
from typing import Any

from tests.test_case_labels import open_case
from tests.test_migrations import other_db
from tracker.cases.labels import keep_case_labels
from tracker.cases.stats import case_numbers
from tracker.cases.work import update_case
from tracker.cli.migrate import known_sources
from tracker.ingest.export_log import export_log
from tracker.ingest.replay import replay_file
from tracker.scores.summary import Facets, case_facets
from tracker.store import Store, keys
from tracker.store.rollups import cross_label

DAY_MS = 86_400_000


def now_ms() -> int:
    return int(time.time() * 1000)


def moved(store: Store, env: dict[str, str], redis_server: str, db: int) -> tuple[Store, Any]:
    """export-log the store, replay the file into an empty database; return that store and the replay's report."""
    out = io.StringIO()
    export_log(store, out)
    _, other_settings, other = other_db(redis_server, env, db)
    lines = [line.encode() for line in out.getvalue().splitlines()]
    return other, replay_file(other, other_settings, lines, "standard", known_sources())


def one_filter(store: Store, name: str, value: str) -> dict[str, Any]:
    """The summary's case numbers under one filter, read from its label's counters (the labelling complete)."""
    keep_case_labels(store)
    assert store.cases_labelled()
    wanted = Facets(**{name: value})
    return case_numbers(store, now_ms(), lambda case, survey: case_facets(case, survey).passes(wanted),
                        label=cross_label(name, value))


def test_a_case_whose_team_is_500_non_ascii_letters_moves_with_export_log_and_replay(
        world, store, settings, env, redis_server):
    # A team of 500 characters is valid on a webhook (TEXT_MAX); its label, percent-encoded, is 3,005 characters:
    # its case line must still read, or the case is lost in the move.
    team = "ø" * 500
    case_id = open_case(world, store, settings, "T-1", "kari@example.no", team=team)
    assert cross_label("team", team) in (store.case(case_id).labels or ())
    other, report = moved(store, env, redis_server, 7)
    assert report.errors == []
    assert other.case(case_id) == store.case(case_id)


def test_a_filters_case_numbers_keep_the_closed_cases_retention_deleted_after_a_move(
        world, store, settings, env, redis_server):
    # Retention deletes a recovered case; its label's counters keep it (case_numbers' docstring), and the
    # cases.retired line carries them beside the unfiltered ones: the filter's recovered_rate is the same after.
    old = open_case(world, store, settings, "T-1", "kari@example.no", hours_ago=100 * 24, team="tech")
    open_case(world, store, settings, "T-2", "per@example.no", team="tech")
    lost = open_case(world, store, settings, "T-3", "ola@example.no", team="tech")
    update_case(store, settings, old, now_ms() - 90 * DAY_MS, "lead", status="recovered")
    update_case(store, settings, lost, now_ms(), "lead", status="not_recovered")
    assert store.retire_closed_cases(now_ms() - 30 * DAY_MS) == 1
    before = one_filter(store, "team", "tech")
    assert before["recovered_rate"] == 50.0
    other, report = moved(store, env, redis_server, 8)
    assert report.errors == []
    assert case_numbers(other, now_ms()) == case_numbers(store, now_ms())  # unfiltered: carried
    assert one_filter(other, "team", "tech") == before


def test_a_lead_closing_a_case_while_export_log_walks_the_cases_leaves_no_phantom_open_case_after_the_move(
        world, store, settings, env, redis_server, monkeypatch):
    # A case closed while the export walks the cases: were the counters read at another moment than the cases, the
    # difference (one active, no recovered) would be carried as a cases.retired line, set for ever in the new
    # install.
    case_id = open_case(world, store, settings, "T-1", "kari@example.no", team="tech")
    walk = store.iter_cases

    closed = []

    def closed_meanwhile(batch: int = 500, buckets: Any = None) -> Any:
        if not closed:  # the lead closes it once, while the export is under way
            closed.append(update_case(store, settings, case_id, now_ms(), "lead", status="recovered"))
        yield from walk(batch, buckets)

    monkeypatch.setattr(store, "iter_cases", closed_meanwhile)
    other, report = moved(store, env, redis_server, 9)
    monkeypatch.undo()
    assert report.errors == []
    assert store.case_counts(now_ms()).active == 0
    assert other.case_counts(now_ms()).active == 0  # no case shown open that none is
    assert case_numbers(other, now_ms()) == case_numbers(store, now_ms())
    assert keys.case_bucket(case_id) is not None
