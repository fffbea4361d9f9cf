"""What the report commands print is shown, never obeyed by the terminal.

Names, ticket ids, comments and file lines come from webhooks, customers and files: an escape sequence in one
(ESC ] 0; … retitles the window, ESC [ 2 J clears it, others rewrite what was printed) would be run by the
operator's terminal. Every control character but tab and newline is written as its \\uXXXX escape instead: read
plainly in a table, and the very same character inside a JSON string, so the --json outputs keep their values.
"""

from __future__ import annotations

import io
import re
from typing import TextIO

CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # C0 but tab and newline, DEL, C1


def shown(text: str) -> str:
    """Return text with every control character but tab and newline as its \\uXXXX escape."""
    return CONTROLS.sub(lambda found: f"\\u{ord(found.group()):04x}", text)


class ShownStream(io.TextIOBase):
    """A text stream that writes what it is given through shown() to the stream it wraps."""

    def __init__(self, wrapped: TextIO):
        super().__init__()
        self.wrapped = wrapped

    def write(self, text: str) -> int:
        self.wrapped.write(shown(text))
        return len(text)

    def flush(self) -> None:
        self.wrapped.flush()

    def isatty(self) -> bool:
        return self.wrapped.isatty()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self.wrapped.encoding
