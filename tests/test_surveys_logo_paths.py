"""Logo paths in TRACKER_SURVEYS_FILE that are not a readable image file, and keys of inline extra_questions:
each is one line, `<file>:<line>: <key>: <what is wrong>`, never a traceback or a hang."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT
from tracker.config import ConfigError
from tracker.surveys.custom import load_surveys_file
from tracker.surveys.custom.load import LOGO_MAX_BYTES

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
BASE = '[[surveys]]\nbrand = "acme"\n'


def _surveys(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "surveys.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _mistake(path: Path) -> str:
    with pytest.raises(ConfigError) as raised:
        load_surveys_file(path)
    message = str(raised.value)
    assert "\n" not in message, message
    return message


def test_a_logo_that_is_a_symlink_loop_is_one_line(tmp_path: Path):
    (tmp_path / "loop.png").symlink_to(tmp_path / "loop.png")
    path = _surveys(tmp_path, BASE + 'logo = "loop.png"\n')
    message = _mistake(path)
    assert message.startswith(f"{path}:3: logo: cannot read "), message


def test_a_logo_name_with_a_nul_is_one_line(tmp_path: Path):
    path = _surveys(tmp_path, BASE + 'logo = "a\\u0000.png"\n')
    message = _mistake(path)
    assert message.startswith(f"{path}:3: logo: ") and "NUL" in message, message


def test_a_logo_that_is_a_folder_is_one_line(tmp_path: Path):
    (tmp_path / "dir.png").mkdir()
    path = _surveys(tmp_path, BASE + 'logo = "dir.png"\n')
    assert _mistake(path) == f"{path}:3: logo: cannot read {tmp_path / 'dir.png'}: a folder"


def test_a_logo_that_is_a_named_pipe_is_refused_without_waiting_for_a_writer(tmp_path: Path):
    os.mkfifo(tmp_path / "fifo.png")
    path = _surveys(tmp_path, BASE + 'logo = "fifo.png"\n')
    # In a separate process: were the pipe opened for reading, this would wait for a writer for ever.
    run = subprocess.run([sys.executable, "-m", "tracker", "survey", "preview", "--brand", "acme", "--out",
                          str(tmp_path / "out")], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "TRACKER_SURVEYS_FILE": str(path)})
    assert run.returncode != 0 and "Traceback" not in run.stderr, run.stderr
    assert run.stderr.strip() == (f"tracker: {path}:3: logo: cannot read {tmp_path / 'fifo.png'}: "
                                  "not a regular file"), run.stderr


def test_a_logo_is_read_through_a_symlink_and_a_big_one_is_measured_not_read_whole(tmp_path: Path):
    (tmp_path / "acme.png").write_bytes(PNG)
    (tmp_path / "link.png").symlink_to(tmp_path / "acme.png")
    logos = load_surveys_file(_surveys(tmp_path, BASE + 'logo = "link.png"\n')).logos()
    assert [logo.data for logo in logos.values()] == [PNG]
    (tmp_path / "big.png").write_bytes(PNG + b"\x00" * (2 * LOGO_MAX_BYTES))
    path = _surveys(tmp_path, BASE + 'logo = "big.png"\n')
    message = _mistake(path)
    assert message.startswith(f"{path}:3: logo: big.png is {(len(PNG) + 2 * LOGO_MAX_BYTES) // 1024} KiB; "
                              f"at most {LOGO_MAX_BYTES // 1024} KiB"), message


@pytest.mark.parametrize("text, line", [
    (BASE + 'extra_questions = [{id="a", type="text", question="q", bogus=1}]\n', 3),
    (BASE + 'extra_questions = [\n  {id="a", type="text", question="A {x}?"},  # {not a table\n'
            '  {id="b", type="text", question="B \\"}\\"?", bogus=1},\n]\n', 5),
])
def test_an_unknown_key_in_an_inline_extra_question_is_reported_at_its_line(tmp_path: Path, text: str, line: int):
    path = _surveys(tmp_path, text)
    message = _mistake(path)
    assert message.startswith(f"{path}:{line}: extra_questions.bogus: unknown key"), message


def test_a_missing_key_of_an_inline_extra_question_is_reported_at_its_table(tmp_path: Path):
    path = _surveys(tmp_path, BASE + 'extra_questions = [\n  {id="a", type="text", question="A?"},\n'
                                     '  {id="b", type="text"},\n]\n')
    assert _mistake(path).startswith(f"{path}:5: extra_questions.question: is required")
