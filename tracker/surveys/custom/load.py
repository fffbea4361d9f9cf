"""Read and check a surveys file; every mistake is one line: `<file>:<line>: <key>: <what is wrong>`, and every one
is found (SettingsProblems: a process stops with the first, `tracker check` prints them all)."""

from __future__ import annotations

import hashlib
import os
import re
import stat
import tomllib
from collections.abc import Callable, Mapping
from email.utils import parseaddr
from pathlib import Path
from typing import Any, TypeVar

from tracker.errors import ConfigError, SettingsProblems
from tracker.i18n.catalogue import SUPPORTED
from tracker.scales import SCALES
from tracker.setting_files import read_setting_file
from tracker.surveys.custom.lines import KeyLines, key_on_line
from tracker.surveys.custom.model import (
    MAX_EXTRA_QUESTIONS,
    QUESTION_TYPES,
    CustomSurvey,
    ExtraQuestion,
    Followup,
    Logo,
    SurveyEntry,
    SurveysFile,
)

LOGO_TYPES = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "svg": "image/svg+xml",
              "webp": "image/webp"}
LOGO_MAX_BYTES = 512 * 1024
COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
DOMAIN = re.compile(r"(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}|localhost")
ADDRESS = re.compile(r"[^@\s<>\"]+@[^@\s<>\"]+")
QUESTION_ID = re.compile(r"[a-z][a-z0-9_]{0,39}")
TEXT_MAX = 500
# The keys of one entry; each names what it holds ("text": a non-empty string).
ENTRY_KEYS = {
    "brand": "text", "source": "text", "locale": "text", "question": "text", "labels": "texts",
    "thanks": "text", "colour": "text", "logo": "text", "from": "text", "reply_domain": "text",
    "followup_question": "text", "followup_reasons": "texts",
    "followup_satisfied": "bool", "satisfied_question": "text", "satisfied_reasons": "texts",
    "extra_questions": "tables",
}
QUESTION_KEYS = {"id": "text", "type": "text", "question": "text", "choices": "texts"}
KINDS = {"text": "a string, not empty", "texts": "a list of strings, none empty", "bool": "true or false",
         "tables": "[[…]] tables"}


T = TypeVar("T")


class _Reader:
    """Check one file's parsed data against its text, noting every mistake (`problems`, one line each): each entry,
    each of its keys and each extra question is checked on its own, so one mistake hides no other; a key whose value
    has the wrong type is not checked further."""

    def __init__(self, path: Path, source: str, scales: Mapping[tuple[str, str], str], default_scale: str) -> None:
        self.path, self.source, self.lines = path, source, KeyLines.scan(source)
        self.scales, self.default_scale = scales, default_scale
        self.problems: list[str] = []

    def note(self, entry: int | None, question: int | None, key: str, problem: str) -> None:
        self.problems.append(str(self.fail(entry, question, key, problem)))

    def noted(self, check: Callable[[], T]) -> T | None:
        """Return what check() returns, or note the ConfigError it raised and return None."""
        try:
            return check()
        except ConfigError as exc:
            self.problems.append(str(exc))
            return None

    def fail(self, entry: int | None, question: int | None, key: str, problem: str) -> ConfigError:
        where = self.lines.line(entry, question, key.rpartition(".")[2] if question is not None else key)
        if entry is not None and question is not None and (entry, question, None) not in self.lines.lines:
            # not a [[surveys.extra_questions]] table but an inline one, `extra_questions = [{…}, …]`: its line
            start = self.lines.lines.get((entry, None, "extra_questions"))
            if start is not None:
                where = _inline_table_line(self.source, start, question) or start
        return ConfigError(f"{self.path}:{where}: {key}: {problem}")

    def typed(self, table: Mapping[str, Any], allowed: Mapping[str, str], entry: int, question: int | None,
              prefix: str = "") -> bool:
        """Note each key that is unknown or holds the wrong type; say whether there was none."""
        before = len(self.problems)
        for key, value in table.items():
            kind = allowed.get(key)
            if kind is None:
                self.note(entry, question, prefix + key, f"unknown key (known: {', '.join(allowed)})")
                continue
            ok = {"text": isinstance(value, str) and value.strip() != "",
                  "texts": isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value),
                  "bool": isinstance(value, bool),
                  "tables": isinstance(value, list) and all(isinstance(v, dict) for v in value)}[kind]
            if not ok:
                self.note(entry, question, prefix + key, f"must be {KINDS[kind]}, got {_shown(value)}")
                continue
            if any(len(text) > TEXT_MAX for text in ([value] if kind == "text" else value if kind == "texts" else [])):
                self.note(entry, question, prefix + key, f"is longer than {TEXT_MAX} characters")
        return len(self.problems) == before

    def entry(self, index: int, table: dict[str, Any]) -> SurveyEntry | None:
        """Return an entry, or None when a problem of it was noted."""
        if not self.typed(table, ENTRY_KEYS, index, None):
            return None
        before = len(self.problems)
        brand, source = _lower(table.get("brand")), _lower(table.get("source"))
        locale = _lower(table.get("locale"))
        if locale is not None and locale not in SUPPORTED:
            self.note(index, None, "locale", f"must be one of {', '.join(SUPPORTED)}, got {locale!r}")
        values: dict[str, Any] = {}
        if "question" in table:
            values["question"] = table["question"].strip()
        if "thanks" in table:
            values["thanks"] = table["thanks"].strip()
        if "labels" in table:
            scale = self.scale(brand, source)
            count = len(SCALES[scale].values)
            if len(table["labels"]) != count:
                self.note(index, None, "labels", f"the {scale} scale has {count} values, so {count} labels "
                          f"(low to high), got {len(table['labels'])}")
            values["labels"] = tuple(label.strip() for label in table["labels"])
        if "colour" in table:
            if not COLOUR.fullmatch(table["colour"]):
                self.note(index, None, "colour", f"must be #rrggbb, like \"#0b6e4f\", got {table['colour']!r}")
            values["colour"] = table["colour"].lower()
        if "logo" in table:
            values["logo"] = self.noted(lambda: self.logo(index, table["logo"]))
        if "from" in table:
            address = parseaddr(table["from"])[1]
            if not ADDRESS.fullmatch(address) or not DOMAIN.fullmatch(address.rpartition("@")[2]):
                self.note(index, None, "from", f"must be an email address, like \"Acme <help@acme.example>\", "
                          f"got {table['from']!r}")
            values["mail_from"] = table["from"].strip()
        if "reply_domain" in table:
            if not DOMAIN.fullmatch(table["reply_domain"].strip()):
                self.note(index, None, "reply_domain", f"must be a domain name, like replies.acme.example, "
                          f"got {table['reply_domain']!r}")
            values["reply_domain"] = table["reply_domain"].strip().lower()
        if "followup_question" in table or "followup_reasons" in table:
            values["followup"] = Followup(_strip(table.get("followup_question")),
                                          tuple(r.strip() for r in table.get("followup_reasons", ())))
        values.update(self.noted(lambda: self.satisfied(index, table)) or {})
        if "extra_questions" in table:
            values["extra_questions"] = self.questions(index, table["extra_questions"])
        if len(self.problems) != before:
            return None
        return SurveyEntry(self.lines.line(index), brand, source, locale, CustomSurvey(**values), frozenset(values))

    def satisfied(self, index: int, table: dict[str, Any]) -> dict[str, Any]:
        details = [key for key in ("satisfied_question", "satisfied_reasons") if key in table]
        if "followup_satisfied" not in table:
            if details:
                raise self.fail(index, None, details[0], "needs followup_satisfied = true in the same entry")
            return {}
        if not table["followup_satisfied"]:
            if details:
                raise self.fail(index, None, details[0], "is set while followup_satisfied is false")
            return {"followup_satisfied": None}
        return {"followup_satisfied": Followup(_strip(table.get("satisfied_question")),
                                               tuple(r.strip() for r in table.get("satisfied_reasons", ())))}

    def questions(self, index: int, tables: list[dict[str, Any]]) -> tuple[ExtraQuestion, ...]:
        if len(tables) > MAX_EXTRA_QUESTIONS:
            self.note(index, MAX_EXTRA_QUESTIONS, "extra_questions",
                      f"at most {MAX_EXTRA_QUESTIONS} extra questions, got {len(tables)}")
        found: list[ExtraQuestion] = []
        ids: set[str] = set()
        for number, table in enumerate(tables):
            if not self.typed(table, QUESTION_KEYS, index, number, "extra_questions."):
                continue
            missing = [key for key in ("id", "type", "question") if key not in table]
            for key in missing:
                self.note(index, number, f"extra_questions.{key}", "is required")
            before = len(self.problems)
            qid, kind = table.get("id", "").strip(), table.get("type", "").strip()
            if "id" in table and not QUESTION_ID.fullmatch(qid):
                self.note(index, number, "extra_questions.id", "must be lower-case letters, digits and _, "
                          f"starting with a letter, at most 40, got {qid!r}")
            elif qid in ids:
                self.note(index, number, "extra_questions.id", f"{qid!r} is used by an earlier question of this entry")
            ids.add(qid)
            if "type" in table and kind not in QUESTION_TYPES:
                self.note(index, number, "extra_questions.type", f"must be choice or text, got {kind!r}")
            choices = tuple(c.strip() for c in table.get("choices", ()))
            if kind == "choice" and len(choices) < 2:
                self.note(index, number, "extra_questions.choices", "a choice question needs at least two choices")
            if kind == "text" and "choices" in table:
                self.note(index, number, "extra_questions.choices", "only a choice question has choices")
            if len(set(choices)) != len(choices):
                self.note(index, number, "extra_questions.choices", "holds the same choice twice")
            if not missing and len(self.problems) == before:
                found.append(ExtraQuestion(qid, kind, table["question"].strip(), choices))
        return tuple(found)

    def scale(self, brand: str | None, source: str | None) -> str:
        return (self.scales.get(("brand", brand or "")) or self.scales.get(("source", source or ""))
                or self.default_scale)

    def logo(self, index: int, name: str) -> Logo:
        if "\0" in name:
            raise self.fail(index, None, "logo", f"{name!r} holds a NUL character, which no file name can")
        try:
            path = (self.path.parent / name).resolve()
        except RuntimeError:  # a symlink loop, on Python 3.11 (later versions: OSError)
            raise self.fail(index, None, "logo", f"cannot read {self.path.parent / name}: a symbolic link loop"
                            ) from None
        except OSError as exc:
            raise self.fail(index, None, "logo", f"cannot read {self.path.parent / name}: {exc.strerror or exc}"
                            ) from None
        ext = path.suffix.lower().lstrip(".")
        if ext not in LOGO_TYPES:
            raise self.fail(index, None, "logo", f"must be a .png, .jpg, .svg or .webp file, got {name!r}")
        data, size = self.logo_bytes(index, path)
        if size > LOGO_MAX_BYTES:
            raise self.fail(index, None, "logo", f"{name} is {size // 1024} KiB; at most "
                            f"{LOGO_MAX_BYTES // 1024} KiB (mail clients load it with every mail)")
        if not _looks_like(ext, data):
            raise self.fail(index, None, "logo", f"{name} is not a {ext} image")
        ext = "jpg" if ext == "jpeg" else ext
        return Logo(path, hashlib.sha256(data).hexdigest()[:16], ext, LOGO_TYPES[ext], data)

    def logo_bytes(self, index: int, path: Path) -> tuple[bytes, int]:
        """Return at most LOGO_MAX_BYTES + 1 bytes of a logo and its size; a pipe, device or folder is refused.

        Opened without blocking, so that a named pipe cannot hang the process, and checked to be a regular file once
        open, so that nothing can swap it between the check and the read.
        """
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        except (OSError, ValueError) as exc:
            raise self.fail(index, None, "logo", f"cannot read {path}: {_strerror(exc)}") from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                what = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file"
                raise self.fail(index, None, "logo", f"cannot read {path}: {what}")
            if info.st_size > LOGO_MAX_BYTES:
                return b"", info.st_size
            chunks: list[bytes] = []
            got = 0
            while got <= LOGO_MAX_BYTES:
                chunk = os.read(fd, LOGO_MAX_BYTES + 1 - got)
                if not chunk:
                    break
                chunks.append(chunk)
                got += len(chunk)
        except OSError as exc:
            raise self.fail(index, None, "logo", f"cannot read {path}: {_strerror(exc)}") from None
        finally:
            os.close(fd)
        data = b"".join(chunks)
        return data, max(len(data), info.st_size)


def _strerror(exc: Exception) -> str:
    return (exc.strerror if isinstance(exc, OSError) else None) or str(exc) or type(exc).__name__


def _inline_table_line(source: str, start: int, number: int) -> int | None:
    """Return the line on which the number-th (from 0) inline table opens in the array of the key on line start."""
    text = "\n".join(source.splitlines()[start - 1:])
    at, line, brackets, braces, seen = text.find("=") + 1, start, 0, 0, -1
    if at == 0:
        return None
    while at < len(text):
        character = text[at]
        if character == "\n":
            line += 1
        elif character == "#":  # a comment, to the end of its line
            end = text.find("\n", at)
            at = len(text) if end < 0 else end
            continue
        elif character in "\"'":  # a string: skip it, counting the lines a multi-line one spans
            quote = text[at:at + 3] if text[at:at + 3] in ('"""', "'''") else character
            end = at + len(quote)
            while end < len(text) and not text.startswith(quote, end):
                end += 2 if quote[0] == '"' and text[end] == "\\" else 1
            line += text.count("\n", at, end)
            at = end + len(quote)
            continue
        elif character == "[" and braces == 0:
            brackets += 1
        elif character == "]" and braces == 0:
            brackets -= 1
            if brackets <= 0:
                return None
        elif character == "{":
            if braces == 0 and brackets == 1:
                seen += 1
                if seen == number:
                    return line
            braces += 1
        elif character == "}":
            braces -= 1
        at += 1
    return None


def _looks_like(ext: str, data: bytes) -> bool:
    """Say whether the bytes begin as a file of this type does."""
    if ext == "png":
        return data.startswith(b"\x89PNG\r\n\x1a\n")
    if ext in ("jpg", "jpeg"):
        return data.startswith(b"\xff\xd8\xff")
    if ext == "webp":
        return data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    return b"<svg" in data[:4096]


def _lower(value: str | None) -> str | None:
    return value.strip().lower() if value is not None else None


def _strip(value: str | None) -> str | None:
    return value.strip() if value is not None else None


def _shown(value: object) -> str:
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:37] + "…"


def _deepest_line(source: str) -> int:
    """Return the line where brackets and braces first nest deepest (strings not told apart: for a message)."""
    depth = deepest = 0
    line = found = 1
    for character in source:
        if character == "\n":
            line += 1
        elif character in "[{":
            depth += 1
            if depth > deepest:
                deepest, found = depth, line
        elif character in "]}":
            depth -= 1
    return found


def load_surveys_file(path: str | Path, default_scale: str = "csat5",
                      scale_by_source: Mapping[str, str] | None = None,
                      scale_by_brand: Mapping[str, str] | None = None) -> SurveysFile:
    """Read and check a surveys file (TOML), or raise ConfigError: `<file>:<line>: <key>: <what is wrong>`.

    Labels are counted against the scale the entry's brand, else source, else default_scale gives.
    """
    path = Path(path)
    source = read_setting_file("TRACKER_SURVEYS_FILE", path)
    try:
        data = tomllib.loads(source)
    except RecursionError:  # tomllib reads nested arrays and inline tables by recursion
        line = _deepest_line(source)
        raise ConfigError(f"{path}:{line}: {key_on_line(source, line) or 'syntax'}: not valid TOML: arrays or "
                          "inline tables nested too deeply") from None
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = re.search(r"\(at line (\d+), column (\d+)\)", message)
        line = int(match.group(1)) if match else 1
        what = re.sub(r"\s*\(at line \d+, column \d+\)|\s*\(at end of document\)", "", message)
        where = f" at column {match.group(2)}" if match else ""
        raise ConfigError(f"{path}:{line}: {key_on_line(source, line) or 'syntax'}: not valid TOML: "
                          f"{what[:1].lower()}{what[1:]}{where}") from None
    scales = {**{("source", k): v for k, v in (scale_by_source or {}).items()},
              **{("brand", k): v for k, v in (scale_by_brand or {}).items()}}
    reader = _Reader(path, source, scales, default_scale)
    for key in data:
        if key != "surveys":
            reader.note(None, None, key, "unknown key: every entry is a [[surveys]] table")
    tables = data.get("surveys", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        reader.note(None, None, "surveys", "must be [[surveys]] tables")
        tables = []
    entries = [reader.entry(index, table) for index, table in enumerate(tables)]
    seen: dict[tuple[str | None, ...], SurveyEntry] = {}
    for index, entry in enumerate(entries):
        if entry is None:
            continue
        selector = (entry.brand, entry.source, entry.locale)
        if selector in seen:
            reader.note(index, None, "surveys", "another entry (line "
                        f"{seen[selector].line}) is for the same brand, source and locale")
        seen[selector] = entry
    if reader.problems:  # a process stops with the first; `tracker check` prints every one
        raise SettingsProblems(reader.problems)
    return SurveysFile(path, tuple(entry for entry in entries if entry is not None))
