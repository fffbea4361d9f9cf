"""Reading an emailed reply to a survey: drop quotes and signatures, find the rating, keep the comment.

Pure functions: text in, a ReplyParse out. The rating is a number in the scale's range ("4", "4/5",
"4 av 5", "10!"); without one, the first scale word in the survey's language or English ("great",
"bra", "dårlig", "gut", "not good") or emoji (👍 😀 😐 😞, ⭐⭐⭐⭐). Two different numbers, or two
different words or emoji in the sentence that rates, make the reply ambiguous rather than a guess.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from tracker.answers.reply_parse import words as w
from tracker.answers.reply_parse.text import html_to_text, strip_quoted
from tracker.i18n.catalogue import normalise_locale
from tracker.scales import SCALES

COMMENT_MAX = 2000
TEXT_MAX = 20_000  # the part of a reply that is read; a rating is never further down than this
HTML_MAX = 200_000  # the same for HTML, where markup takes most of the room
FOLD = {"ø": "o", "æ": "ae", "œ": "oe", "đ": "d", "ł": "l", "’": "'", "‘": "'", "ʼ": "'", "´": "'", "`": "'"}
MODIFIERS = "\ufe0f\u200d\U0001F3FB-\U0001F3FF"


@dataclass(frozen=True)
class ReplyParse:
    """What a reply said: outcome rating / ambiguous / no_rating, the rating, and the comment."""

    outcome: str
    rating: int | None
    comment: str


@dataclass(frozen=True)
class _Found:
    start: int  # offsets in the folded text
    end: int
    value: int
    kind: str  # number, word, emoji


# --- HTML to text ---------------------------------------------------------------------------------

# --- Finding the rating ----------------------------------------------------------------------------


def fold(text: str) -> tuple[str, list[int]]:
    """Lower-case and strip accents; return the folded text and each folded char's offset in text."""
    chars: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        for c in unicodedata.normalize("NFKD", ch.casefold()):
            if not unicodedata.combining(c):
                for piece in FOLD.get(c, c):
                    chars.append(piece)
                    origin.append(i)
    return "".join(chars), origin


def _pattern(phrases: list[str]) -> re.Pattern[str]:
    if not phrases:
        return re.compile(r"(?!x)x")
    parts = [re.sub(r"\\[ \-]", r"[\\s-]+", re.escape(p)) for p in sorted(phrases, key=len, reverse=True)]
    return re.compile(r"(?<![\w'])(?:" + "|".join(parts) + r")(?![\w'])")


def _key(phrase: str) -> str:
    return re.sub(r"[\s-]+", " ", fold(phrase)[0].strip())


@lru_cache(maxsize=64)
def _words(scale_name: str, lang: str) -> tuple[re.Pattern[str], dict[str, int | None], re.Pattern[str]]:
    """Return the word pattern, each phrase's level (sentiment 1-5 or effort 1-7) and the negation pattern."""
    source = w.EFFORT if scale_name == "ces7" else w.SENTIMENT if scale_name in w.FROM_SENTIMENT else {}
    languages = dict.fromkeys(("en", lang))
    table = {_key(k): v for language in languages for k, v in source.get(language, {}).items()}
    negations = [_key(n) for language in languages for n in w.NEGATIONS.get(language, ())]
    negation = re.compile(r"(?<![\w'])(?:" + "|".join(map(re.escape, negations)) + r")\s+(?:[\w']+\s+)?$")
    return _pattern(list(table)), table, negation


NUMBER = re.compile(
    r"(?<![\w#@/.,:+\-–'’$£€])(\d{1,2})"
    rf"(?:\s*(?:{w.OUT_OF})\s*(\d{{1,2}})(?![\w]|[.,]\d))?"
    rf"(?:\s*(?:{w.STAR_WORDS})\b)?"
    rf"(?![\w%€$£]|[.,:]\d|\s*[-–]\s*\d|\s*[%€$£]|\s*(?:de\s+|\.\s*)?(?:{w.UNITS})\b)")
EMOJI = re.compile("(?:" + "|".join(map(re.escape, sorted(w.EMOJI, key=len, reverse=True))) + f")[{MODIFIERS}]*")
STARS = re.compile(f"(?:[{w.FILLED_STARS}][{MODIFIERS}]* ?)+(?:{w.EMPTY_STARS} ?)*")
EMOTICON = re.compile(r"(?<![^\s(])(?:" + "|".join(map(re.escape, sorted(w.EMOTICONS, key=len, reverse=True)))
                      + r")(?![^\s.,!?)])")


def _rescale(number: int, out_of: int | None, high: int) -> int | None:
    if out_of is None or out_of == high:
        return number
    if out_of == 0 or number > out_of or (number * high) % out_of:
        return None
    return number * high // out_of  # "8/10" on a 1-5 scale is a 4


def _numbers(folded: str, scale_name: str) -> list[_Found]:
    scale = SCALES[scale_name]
    found = []
    for m in NUMBER.finditer(folded):
        value = _rescale(int(m.group(1)), int(m.group(2)) if m.group(2) else None, scale.high)
        if value is not None and value in scale.values:
            found.append(_Found(m.start(), m.end(), value, "number"))
    return found


def _pictures(folded: str, scale_name: str) -> list[_Found]:
    mapping = w.FROM_SENTIMENT.get(scale_name, {})
    found = []
    for pattern, kind in ((EMOJI, "emoji"), (STARS, "emoji"), (EMOTICON, "emoji")):
        for m in pattern.finditer(folded):
            if pattern is STARS:
                level = sum(m.group(0).count(c) for c in w.FILLED_STARS)
            else:
                bare = re.sub(f"[{MODIFIERS} ]", "", m.group(0))
                level = (w.EMOJI if pattern is EMOJI else w.EMOTICONS).get(bare, 0)
            if level in mapping:
                found.append(_Found(m.start(), m.end(), mapping[level], kind))
    return found


def _negated(level: int, top: int) -> int:
    # "not good" is poor; "not bad" (when no phrase says otherwise) is middling.
    middle = (1 + top) // 2
    return 2 if level >= middle else middle


def _wordings(folded: str, scale_name: str, lang: str) -> list[_Found]:
    pattern, table, negation = _words(scale_name, lang)
    top = 7 if scale_name == "ces7" else 5
    mapping = w.FROM_SENTIMENT.get(scale_name) or {v: v for v in range(1, top + 1)}
    found: list[_Found] = []
    for m in pattern.finditer(folded):
        level = table.get(_key(m.group(0)))
        if level is None:
            continue  # a stop phrase: "good morning", "bien à vous"
        if negation.search(folded[max(0, m.start() - 40):m.start()]):
            level = _negated(level, top)
        if level in mapping:
            found.append(_Found(m.start(), m.end(), mapping[level], "word"))
    if scale_name == "thumbs":
        first = re.match(r"\s*([\w']+)", folded)
        answers = {_key(k): v for language in dict.fromkeys(("en", lang))
                   for k, v in w.YES_NO.get(language, {}).items()}
        if first and answers.get(first.group(1)) is not None and not pattern.match(folded, first.start(1)):
            found.insert(0, _Found(first.start(1), first.end(1), answers[first.group(1)] or 0, "word"))
    return found


def _side(value: int, scale_name: str) -> int:
    scale = SCALES[scale_name]
    doubled = 2 * value - scale.low - scale.high
    return (doubled > 0) - (doubled < 0)


def _sentence(folded: str, at: int) -> tuple[int, int]:
    start = max(folded.rfind(c, 0, at) for c in ".!?\n;") + 1
    ends = [i for i in (folded.find(c, at) for c in ".!?\n;") if i >= 0]
    return start, min(ends, default=len(folded))


def _comment(text: str, origin: list[int], used: list[_Found]) -> str:
    """Return the reply without the rating token where that leaves a readable text, tidied and capped."""
    removals: list[tuple[int, int, int, int]] = []
    for f in used:
        start, end = origin[f.start], origin[f.end - 1] + 1
        line_start = text.rfind("\n", 0, start) + 1
        line_end = len(text) if text.find("\n", end) < 0 else text.find("\n", end)
        before, after = (bool(re.search(r"[^\W_]", part)) for part in (text[line_start:start], text[end:line_end]))
        closes = not after and re.search(r"[,:;.!?\-–—(|/]\s*$", text[line_start:start])
        # Removing a token from inside a sentence ("I give it 4 of 5 because…") would garble it; a word
        # goes only when it stands alone on its line, a number or emoji when it opens the line or is set
        # off at its end ("Thanks, 5/5").
        if (f.kind == "word" and (before or after)) or (before and not closes) or any(
                r[2] == line_start for r in removals):
            continue
        removals.append((start, end, line_start, line_end))
    for start, end, line_start, line_end in sorted(removals, reverse=True):
        line = text[line_start:start] + text[end:line_end]
        line = re.sub(r"^[\s\-–—:,;.!/|)]+|[\s\-–—:,;/|(]+$", "", line)
        text = text[:line_start] + line + text[line_end:]
    lines = [line.strip() for line in text.split("\n")]
    cleaned = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return cleaned[:COMMENT_MAX].strip()


def parse_reply(text: str | None, html: str | None, scale_name: str, lang: str) -> ReplyParse:
    """Read the rating and comment from a reply's text (or, when it has none, its HTML)."""
    scale_name = scale_name if scale_name in SCALES else "csat5"
    lang = normalise_locale(lang)
    body = text if text and text.strip() else html_to_text((html or "")[:HTML_MAX])
    reply = strip_quoted(body[:TEXT_MAX * 5])[:TEXT_MAX]
    folded, origin = fold(reply)
    numbers = _numbers(folded, scale_name)
    if len({f.value for f in numbers}) > 1:
        return ReplyParse("ambiguous", None, _comment(reply, origin, []))
    if numbers:
        return ReplyParse("rating", numbers[0].value, _comment(reply, origin, numbers))
    others = sorted(_pictures(folded, scale_name) + _wordings(folded, scale_name, lang), key=lambda f: f.start)
    if not others:
        return ReplyParse("no_rating", None, _comment(reply, origin, []))
    first = others[0]
    start, end = _sentence(folded, first.start)
    sides = {_side(f.value, scale_name) for f in others if start <= f.start < end}
    if 1 in sides and -1 in sides:  # "good and bad": both ways in the sentence that rates
        return ReplyParse("ambiguous", None, _comment(reply, origin, []))
    return ReplyParse("rating", first.value, _comment(reply, origin, [first]))


# --- Auto-replies ----------------------------------------------------------------------------------

AUTO_SUBJECT = re.compile(
    r"^\s*(?:(?:re|sv|aw|vs|antw|r|fw|fwd)\s*:\s*)*\[?\s*(?:auto(?:matic|matisk|matiskt|matique|matische|matisch|"
    r"matico)?[\s-]*(?:reply|response|svar|antwort|antwoord|answer|besked)|autoreply|autoresponder|auto-?svar|"
    r"(?:reponse|respuesta|risposta) automati\w*|out of (?:the )?office|ooo\b|fravaer\w*|franvaro\w*|"
    r"abwesen\w*|afwezig\w*|absence|absent|ausente|fuera de la oficina|ikke (?:paa|pa) kontoret|"
    r"ikke til stede|on vacation|on holiday|away from (?:the )?office|i urlaub|im urlaub|delivery status|"
    r"undeliver\w*|mail delivery (?:failed|failure)|returned mail|non[- ]?remis|unzustellbar|"
    r"complaint about message|メールエラー)", re.I)
# Addresses no person answers from: bounces (mailer-daemon, postmaster, post_master) and no-reply senders.
AUTO_SENDER = re.compile(r"(?:^|[\s<\"'])(?:mailer-daemon|postmaster|post_master|no-?reply|do-?not-?reply)@")


def is_auto_reply(headers: Mapping[str, str], subject: str) -> bool:
    """Tell an out-of-office, autoresponder or bounce apart from a person's reply (RFC 3834 and habits)."""
    lower = {str(k).lower(): str(v).strip().lower() for k, v in headers.items()}
    auto = lower.get("auto-submitted", "no").split(";")[0].strip()
    if auto and auto != "no":
        return True
    if any(name in lower for name in ("x-autoreply", "x-autorespond", "x-autoresponder", "x-autogenerated")):
        return True
    if lower.get("precedence", lower.get("x-precedence", "")) in ("bulk", "auto_reply", "junk"):
        return True
    if lower.get("return-path", "").strip() == "<>" or "multipart/report" in lower.get("content-type", ""):
        return True
    if AUTO_SENDER.search(lower.get("from", "")):
        return True
    return bool(AUTO_SUBJECT.match(fold(subject or "")[0][:300]))
