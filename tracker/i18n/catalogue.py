"""Localized strings for survey mails and pages (gettext catalogues under locale/), dates, and customer locales."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from babel import dates as babel_dates
from babel.messages.pofile import read_po

from tracker.scales import SCALES

SUPPORTED = ("en", "nb", "sv", "da", "de", "fr", "es", "nl")
DEFAULT = "en"
# Helpdesks send codes ("nb-NO", "nb_NO.UTF-8"), ISO 639-2 codes or language names
# (Zendesk's {{ticket.requester.language}} renders a name such as "Norsk"); Norwegian has
# three codes, and we write bokmål for all of them (nynorsk readers read bokmål).
ALIASES = {
    "no": "nb", "nn": "nb", "nob": "nb", "nno": "nb", "nor": "nb", "norsk": "nb", "norwegian": "nb",
    "bokmål": "nb", "bokmal": "nb", "nynorsk": "nb", "norsk bokmål": "nb", "norwegian bokmål": "nb",
    "norwegian bokmal": "nb", "norsk nynorsk": "nb", "norwegian nynorsk": "nb",
    "eng": "en", "english": "en", "swe": "sv", "svenska": "sv", "swedish": "sv",
    "dan": "da", "dansk": "da", "danish": "da", "deu": "de", "ger": "de", "deutsch": "de", "german": "de",
    "fra": "fr", "fre": "fr", "français": "fr", "francais": "fr", "french": "fr",
    "spa": "es", "español": "es", "espanol": "es", "castellano": "es", "spanish": "es",
    "nld": "nl", "dut": "nl", "nederlands": "nl", "dutch": "nl", "vlaams": "nl", "flemish": "nl",
}

LOCALE_DIR = Path(__file__).parent / "locale"
# English as the British write it: day, month, year (CLDR's "en" is American, month first).
BABEL_LOCALES = {"en": "en_GB"}


def load_catalogue(lang: str) -> dict[str, str]:
    """Read one language's gettext catalogue into {key: text}; fuzzy or empty entries fall back to English."""
    with (LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle, locale=lang)
    return {message.context: message.string for message in catalog
            if message.context and isinstance(message.string, str) and message.string and not message.fuzzy}


# Read once at start-up: the .po files are the source translators edit, and nothing compiles them.
CATALOGUES: dict[str, dict[str, str]] = {lang: load_catalogue(lang) for lang in SUPPORTED}


def normalise_locale(raw: str | None) -> str:
    """Map a customer's locale, language name or Accept-Language value to a supported language."""
    if not raw:
        return DEFAULT
    for entry in raw.split(","):
        candidate = entry.split(";")[0].strip().lower()
        candidate = re.split(r"[.@]", candidate)[0].replace("_", "-")
        candidate = re.sub(r"\s*\(([^)]*)\)", r" \1", candidate).strip()
        if candidate in ALIASES:
            return ALIASES[candidate]
        primary = candidate.split("-")[0].strip()
        if primary in SUPPORTED:
            return primary
        if primary in ALIASES:
            return ALIASES[primary]
    return DEFAULT


def text(lang: str, key: str, **params: object) -> str:
    """Return the string for key in lang (English where lang lacks it), with params filled in."""
    catalogue = CATALOGUES.get(lang) or CATALOGUES[normalise_locale(lang)]
    template = catalogue.get(key) or CATALOGUES[DEFAULT][key]
    return template.format(**params) if params else template


def scale_labels(lang: str, scale_name: str) -> list[tuple[int, str]]:
    """Return (value, label) for every value of a scale; values without a word are labelled by number."""
    labels = []
    for value in SCALES[scale_name].values:
        key = f"label.{scale_name}.{value}"
        if key in CATALOGUES[DEFAULT]:
            labels.append((value, text(lang, key)))
        else:
            labels.append((value, str(value)))
    return labels


def format_date(lang: str, day: date) -> str:
    """Format a date the way a reader of lang writes it, e.g. "6. desember 2026"."""
    lang = lang if lang in CATALOGUES else normalise_locale(lang)
    # French writes the first of the month as an ordinal ("1er janvier"), which CLDR's pattern does not.
    pattern = "d'er' MMMM y" if lang == "fr" and day.day == 1 else "long"
    return babel_dates.format_date(day, pattern, locale=BABEL_LOCALES.get(lang, lang))


def survey_question(lang: str, scale_name: str, kind: str = "ticket") -> str:
    """Return the question of a scale, asked about a support request or (kind "order") a purchase."""
    if kind == "order" and f"question_order.{scale_name}" in CATALOGUES[DEFAULT]:
        return text(lang, f"question_order.{scale_name}")
    return text(lang, f"question.{scale_name}")
