"""The operator's templates (TRACKER_TEMPLATE_DIR), read once at start-up: a template that cannot compile stops every
process with one line naming its file and line, instead of every gunicorn worker failing to boot with a traceback
(the web compiles its pages before serving) or every survey mail failing in the worker.

Compiled as the web and the mail compile them, with the filters only Flask adds (tojson) counted as known, so an
unknown filter or test is caught too. What the survey mail's templates do at render time (a variable the mail does
not have) is checked by rendering sample surveys when a process starts (tracker.surveys.template_check); the pages'
templates render leniently, and `tracker survey preview` shows them.
"""

from __future__ import annotations

from pathlib import Path

from tracker.errors import ConfigError
from tracker.setting_files import read_setting_file

SUFFIXES = (".html", ".txt")  # what the web and the mail load from the folder
FLASK_FILTERS = ("tojson",)


def check_template_dir(folder: str) -> None:
    """Compile every template in folder, or raise ConfigError: `TRACKER_TEMPLATE_DIR: <file>:<line>: <fault>`."""
    from jinja2 import Environment, TemplateSyntaxError

    # Only compiled, never rendered: escaping does not arise (the web and the mail escape HTML as they render).
    environment = Environment(trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)  # noqa: S701
    environment.filters.update(dict.fromkeys(FLASK_FILTERS, str))
    root = Path(folder)
    for path in sorted(root.rglob("*")):
        hidden = any(part.startswith(".") for part in path.relative_to(root).parts)  # .git and the like
        if hidden or path.suffix not in SUFFIXES or not path.is_file():
            continue
        source = read_setting_file("TRACKER_TEMPLATE_DIR", path)
        try:
            environment.compile(source, name=path.name, filename=str(path))
        except TemplateSyntaxError as exc:  # unknown filters and tests too (TemplateAssertionError)
            raise ConfigError(f"TRACKER_TEMPLATE_DIR: {path}:{exc.lineno}: not a valid template: "
                              f"{exc.message}") from None
        except RecursionError:  # the parser reads nested blocks and expressions by recursion
            raise ConfigError(f"TRACKER_TEMPLATE_DIR: {path}: not a valid template: nested too deeply") from None
