"""The operator's templates (TRACKER_TEMPLATE_DIR) are compiled when the settings are read."""

from __future__ import annotations

import pytest

from tracker.config import ConfigError, load_settings


def _load(folder: str) -> None:
    load_settings({"TRACKER_REDIS_URL": "redis://127.0.0.1:1", "TRACKER_TEMPLATE_DIR": folder}, needs="store")


@pytest.mark.parametrize(("name", "text", "line", "fault"), [
    ("mail/survey.txt", "{% if %}broken\n", 1, "Expected an expression"),
    ("pages/thanks.html", "<p>\n{{ x | nosuchfilter }}</p>\n", 2, "No filter named 'nosuchfilter'"),
])
def test_a_template_that_cannot_compile_is_one_line_naming_file_and_line(tmp_path, name, text, line, fault):
    path = tmp_path / name
    path.parent.mkdir(parents=True)
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        _load(str(tmp_path))
    message = str(raised.value)
    assert "\n" not in message and message.startswith(f"TRACKER_TEMPLATE_DIR: {path}:{line}: "), message
    assert fault in message, message


def test_templates_using_flasks_filters_and_the_apps_globals_pass(tmp_path):
    (tmp_path / "pages").mkdir()
    (tmp_path / "pages" / "thanks.html").write_text('<p>{{ x | tojson }} {{ t("page.thanks") }}</p>\n')
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "junk.html").write_text("{% if %}")  # hidden folders are not templates
    _load(str(tmp_path))
