"""The files the `tracker` command writes and reads: export-log never loses an earlier export, a write that fails is
one line naming the file, the survey preview reports an operator template that fails to render as `tracker check`
does, and import-ratings never lets a stray quote swallow the rows after it."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support import drain, iso, solved_event, tracker
from tracker.cli.commands import main
from tracker.cli.dev import free_port
from tracker.errors import StorageUnavailable
from tracker.scores.cards import customer_card

DAY = 86_400
EARLIER = '{"an": "earlier export, kept whole"}\n' * 3


def replayed(env: dict[str, str], tmp_path: Path, *events: dict[str, Any]) -> None:
    """Append events to the log through `tracker replay`, as an operator fills a Redis."""
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(event) + "\n" for event in events))
    result = tracker(env, "replay", str(path))
    assert result.returncode == 0, result.stderr


def some_events(count: int = 5) -> list[dict[str, Any]]:
    return [solved_event(ticket=f"F-{n}", email_address=f"f{n}@example.no", at=iso(3600 + n)) for n in range(count)]


def only_file(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


# --- export-log: the earlier file is kept unless the export finished ---------------------------------------------

def test_export_log_leaves_an_earlier_file_as_it_was_when_redis_does_not_answer(env, tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    earlier = folder / "backup.jsonl"
    earlier.write_text(EARLIER)
    down = {**env, "TRACKER_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}  # nothing listens there
    result = tracker(down, "export-log", str(earlier))
    assert result.returncode == 3 and "cannot reach Redis" in result.stderr, result.stderr
    assert earlier.read_text() == EARLIER
    assert only_file(folder) == ["backup.jsonl"]  # no temporary file left behind
    fresh = folder / "new.jsonl"
    assert tracker(down, "export-log", str(fresh)).returncode == 3
    assert not fresh.exists() and only_file(folder) == ["backup.jsonl"]  # nothing created either


class DroppingStore:
    """The test's store, whose Redis goes away after a few log records have been read."""

    def __init__(self, store: Any, records: int):
        self.store, self.records = store, records

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def iter_log(self) -> Any:
        for number, payload in enumerate(self.store.iter_log()):
            if number == self.records:
                raise StorageUnavailable("ConnectionError")
            yield payload


def test_export_log_keeps_the_earlier_file_when_redis_goes_away_mid_export(env, store, tmp_path, monkeypatch, capsys):
    replayed(env, tmp_path, *some_events(6))
    earlier = tmp_path / "backup.jsonl"
    earlier.write_text(EARLIER)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    import tracker.cli.migrate as migrate

    real_open_store = migrate.open_store
    monkeypatch.setattr(migrate, "open_store", lambda settings: DroppingStore(real_open_store(settings), 3))
    assert main(["export-log", str(earlier)]) == 3
    assert "cannot reach Redis" in capsys.readouterr().err
    assert earlier.read_text() == EARLIER  # not a shorter file that looks whole
    assert only_file(tmp_path) == ["backup.jsonl", "events.jsonl"]


def test_export_log_replaces_the_file_once_whole_keeping_its_mode_and_counts_the_skipped_surveys(
        env, store, settings, tmp_path):
    old_solve = solved_event(ticket="OLD-1", email_address="old@example.no", at=iso(90 * DAY))
    replayed(env, tmp_path, *some_events(3), old_solve)
    drain(store, settings)  # the 90-day-old solve is recorded as skipped (too_old)
    earlier = tmp_path / "backup.jsonl"
    earlier.write_text(EARLIER)
    earlier.chmod(0o640)
    result = tracker(env, "export-log", str(earlier))
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in earlier.read_text().splitlines()]
    skipped = [line for line in lines if line["type"] == "survey.skipped"]
    assert len(skipped) == 1 and skipped[0]["customer"]["email"] == "old@example.no"
    assert result.stdout.strip() == ("Wrote 4 events, 0 unanswered surveys, 1 skipped survey, 0 failed surveys "
                                      "and 0 answers."), result.stdout
    assert stat.S_IMODE(earlier.stat().st_mode) == 0o640
    assert only_file(tmp_path) == ["backup.jsonl", "events.jsonl"]
    link = tmp_path / "link.jsonl"
    link.symlink_to(earlier)
    assert tracker(env, "export-log", str(link)).returncode == 0
    assert link.is_symlink() and earlier.read_text().count("\n") == len(lines)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full here")
def test_export_log_to_a_full_disk_is_one_line_naming_the_file(env, tmp_path):
    replayed(env, tmp_path, *some_events(3))
    result = tracker(env, "export-log", "/dev/full")
    assert result.returncode == 1, result.stderr
    assert result.stderr == "tracker: cannot write /dev/full: No space left on device\n"
    assert os.path.exists("/dev/full") and not os.path.isfile("/dev/full")  # written in place, never replaced


def test_export_log_to_a_folder_is_one_line_naming_it(env, tmp_path):
    replayed(env, tmp_path, *some_events(1))
    folder = tmp_path / "a-folder"
    folder.mkdir()
    result = tracker(env, "export-log", str(folder))
    assert result.returncode == 1 and result.stderr == f"tracker: cannot write {folder}: Is a directory\n"
    assert only_file(folder) == []
    missing = tmp_path / "nowhere" / "backup.jsonl"
    result = tracker(env, "export-log", str(missing))
    assert result.returncode == 1 and result.stderr == f"tracker: cannot write {missing}: No such file or directory\n"


# --- survey preview: files it cannot write, templates that fail to render ----------------------------------------

def test_preview_names_a_file_it_cannot_write_in_one_line(env, tmp_path):
    (tmp_path / "mail.html").mkdir()
    result = tracker(env, "survey", "preview", "--out", str(tmp_path))
    assert result.returncode == 1, result.stderr
    assert result.stderr == f"tracker: cannot write {tmp_path / 'mail.html'}: Is a directory\n"


SAMPLE = "(en, csat5, ticket survey, with a name and a subject)"


def test_preview_reports_a_mail_template_that_fails_to_render_in_one_line_like_check(env, tmp_path):
    templates = tmp_path / "templates"
    (templates / "mail").mkdir(parents=True)
    (templates / "mail" / "survey.txt").write_text("Hello\n{{ greting }}\n")
    result = tracker({**env, "TRACKER_TEMPLATE_DIR": str(templates)}, "survey", "preview", "--out",
                     str(tmp_path / "out"))
    assert result.returncode == 2, result.stderr
    assert result.stderr == (f"tracker: TRACKER_TEMPLATE_DIR: {templates / 'mail' / 'survey.txt'}:2: the survey mail "
                             f"fails to render {SAMPLE}: UndefinedError: 'greting' is undefined\n")
    sent = tracker({**env, "TRACKER_TEMPLATE_DIR": str(templates)}, "survey", "test-send", "me@example.no")
    assert sent.returncode == 2 and sent.stderr == result.stderr  # the line test-send (and check) give


def test_preview_reports_a_page_template_that_fails_to_render_in_one_line(env, tmp_path):
    templates = tmp_path / "templates"
    (templates / "pages").mkdir(parents=True)
    (templates / "pages" / "thanks.html").write_text("{{ nothing.attr.deeper }}\n")
    result = tracker({**env, "TRACKER_TEMPLATE_DIR": str(templates)}, "survey", "preview", "--out",
                     str(tmp_path / "out"))
    assert result.returncode == 2, result.stderr
    assert result.stderr == (f"tracker: TRACKER_TEMPLATE_DIR: {templates / 'pages' / 'thanks.html'}:1: the thanks page "
                             f"fails to render {SAMPLE}: UndefinedError: 'nothing' is undefined\n")


# --- import-ratings: a stray quote, a file that is not UTF-8 -----------------------------------------------------

HEADER = "email,rating,answered_at,comment\n"
AT = "2026-11-03T00:00:00Z"


def cards(store: Any, settings: Any, *emails: str) -> dict[str, Any]:
    now = int(time.time() * 1000)
    return {email: customer_card(store, settings, email, now) for email in emails}


def test_a_quote_never_closed_is_reported_at_its_line_and_the_rows_after_it_still_import(env, store, settings,
                                                                                        tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text(HEADER + f'v1@example.com,2,{AT},"said ""hi\n' + f"v2@example.com,4,{AT},fine\n"
                    f"v3@example.com,5,{AT},great\nv4@example.com,1,{AT},bad\n")
    result = tracker(env, "import-ratings", str(path))
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith(f"{path}:2: a quote opened on this line is not closed properly "
                                    "(unexpected end of data)"), result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "3 ratings imported, 0 already imported, 1 row rejected" in result.stdout
    drain(store, settings)
    found = cards(store, settings, "v1@example.com", "v2@example.com", "v3@example.com", "v4@example.com")
    assert found["v1@example.com"] is None  # the bad row alone is left out
    assert [found[f"v{n}@example.com"].responses for n in (2, 3, 4)] == [1, 1, 1]
    again = tracker(env, "import-ratings", str(path))
    assert "0 ratings imported, 3 already imported, 1 row rejected" in again.stdout


def test_an_address_is_checked_as_written_and_kept_folded_as_a_webhook_s_is(env, store, settings, tmp_path):
    # "İnci@…" is an address; folded first ("i̇nci@…", with a combining dot) it was refused as none.
    path = tmp_path / "ratings.csv"
    path.write_text(HEADER + f"İnci@Example.no,4,{AT},fine\nKARI@EXAMPLE.NO,5,{AT},\n", encoding="utf-8")
    result = tracker(env, "import-ratings", str(path))
    assert result.returncode == 0 and "2 ratings imported" in result.stdout, result.stdout + result.stderr
    drain(store, settings)
    found = cards(store, settings, "İnci@example.no".lower(), "kari@example.no")
    assert [card.responses for card in found.values()] == [1, 1]
    again = tracker(env, "import-ratings", str(path))
    assert "0 ratings imported, 2 already imported" in again.stdout


def test_a_quoted_value_that_swallows_rows_before_it_closes_is_reported_and_the_rows_read(env, store, settings,
                                                                                         tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text(HEADER + f'v1@example.com,2,{AT},"said ""hi\n' + f"v2@example.com,4,{AT},fine\n"
                    f'v3@example.com,5,{AT},great"\n' + f'v4@example.com,1,{AT},"two\nlines, one comment"\n')
    result = tracker(env, "import-ratings", str(path))
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith(f"{path}:2: a quote opened on this line runs over lines that look like rows"), \
        result.stderr
    assert "3 ratings imported, 0 already imported, 1 row rejected" in result.stdout
    drain(store, settings)
    found = cards(store, settings, "v1@example.com", "v2@example.com", "v3@example.com", "v4@example.com")
    assert found["v1@example.com"] is None
    assert [found[f"v{n}@example.com"].responses for n in (2, 3, 4)] == [1, 1, 1]


def test_a_comment_over_several_lines_still_imports(env, tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text(HEADER + f'v1@example.com,2,{AT},"first line\nsecond, with a comma\n""quoted"""\n'
                    f"v2@example.com,4,{AT},fine\n")
    result = tracker(env, "import-ratings", str(path), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "2 ratings would be imported, 0 already imported, 0 rows rejected" in result.stdout


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le"])
def test_a_csv_that_is_not_utf8_is_said_so_not_called_missing_columns(env, store, tmp_path, encoding):
    path = tmp_path / "ratings.csv"
    path.write_bytes((HEADER + f"v1@example.com,2,{AT},fine\n").encode(encoding))
    result = tracker(env, "import-ratings", str(path))
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert "it is not UTF-8 text" in result.stderr and "missing" not in result.stderr
    assert store.lag().length == 0
