"""Where a key of a surveys file stands: tomllib gives no line numbers, so the source text is scanned for them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
KEY = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_-]+)\s*[.=]""")

# A place in the file: the Nth [[surveys]] entry (0-based), the Nth of its [[surveys.extra_questions]]
# (None: the entry itself), and a key within it (None: the header).
Place = tuple[int | None, int | None, str | None]


@dataclass
class KeyLines:
    """The line of each header and key of a surveys file, found by a scan of its text."""

    lines: dict[Place, int] = field(default_factory=dict)

    @classmethod
    def scan(cls, source: str) -> KeyLines:
        found = cls()
        entry: int | None = None
        question: int | None = None
        entries = -1
        questions = -1
        top = True  # before any header: top-level keys
        in_multiline = False
        for number, line in enumerate(source.splitlines(), start=1):
            # Lines inside a multi-line string are text, not keys.
            if line.count('"""') % 2 or line.count("'''") % 2:
                in_multiline = not in_multiline
                if not in_multiline:
                    continue
            elif in_multiline:
                continue
            header = HEADER.match(line)
            if header:
                name = re.sub(r"\s*\.\s*", ".", header.group(2)).strip("\"'")
                top = False
                if name == "surveys":
                    entries, questions = entries + 1, -1
                    entry, question = entries, None
                elif name == "surveys.extra_questions" and entry is not None:
                    questions += 1
                    question = questions
                elif name.startswith("surveys.") and entry is not None:
                    found.lines.setdefault((entry, None, name.split(".")[1]), number)
                    question = None
                    continue
                else:
                    entry = question = None
                    found.lines.setdefault((None, None, name.split(".")[0]), number)
                    continue
                found.lines.setdefault((entry, question, None), number)
                continue
            key = KEY.match(line)
            if key:
                name = key.group(1).strip("\"'")
                place: Place = (None, None, name) if top else (entry, question, name)
                found.lines.setdefault(place, number)
        return found

    def line(self, entry: int | None = None, question: int | None = None, key: str | None = None) -> int:
        """Return the line of a key, else of the header it belongs under, else 1."""
        for place in ((entry, question, key), (entry, question, None), (entry, None, None)):
            if place in self.lines:
                return self.lines[place]
        return 1


def key_on_line(source: str, number: int) -> str | None:
    """Return the key written on a line of the file (for a syntax error), or None."""
    lines = source.splitlines()
    if not 1 <= number <= len(lines):
        return None
    match = KEY.match(lines[number - 1]) or HEADER.match(lines[number - 1])
    if match is None:
        return None
    return match.group(1 if match.re is KEY else 2).strip("\"'")
