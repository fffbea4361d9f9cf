"""Custom surveys (TRACKER_SURVEYS_FILE): what one entry sets, and picking the text and branding for a survey."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path

# How much each selector makes an entry specific: the brand counts most, then the source, then the locale,
# so every combination has its own rank (brand+source+locale 7 … locale alone 1, the general entry 0).
WEIGHTS = {"brand": 4, "source": 2, "locale": 1}
SELECTORS = tuple(WEIGHTS)
MAX_EXTRA_QUESTIONS = 3
QUESTION_TYPES = ("choice", "text")
LOGO_ROUTE = "/s/brand-logo"


@dataclass(frozen=True)
class ExtraQuestion:
    """One question asked on the page after the rating: a choice among `choices`, or free text."""

    id: str
    type: str  # "choice" or "text"
    question: str
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Followup:
    """The follow-up step after a rating: its heading and the reasons offered (empty: the built-in ones)."""

    question: str | None = None
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class Logo:
    """A brand's logo file, read at start-up; served at /s/brand-logo/<digest>.<ext>."""

    path: Path
    digest: str  # sha256 of the bytes, hex, first 16 characters
    ext: str  # png, jpg, svg or webp
    content_type: str
    data: bytes = field(repr=False, compare=False)

    @property
    def filename(self) -> str:
        return f"{self.digest}.{self.ext}"

    @property
    def url_path(self) -> str:
        """Return where the tracker serves the logo (tracker.web.pages.brand), under TRACKER_PUBLIC_URL."""
        return f"{LOGO_ROUTE}/{self.filename}"


@dataclass(frozen=True)
class CustomSurvey:
    """The text and branding a survey gets from the surveys file; None and () mean "the product's own"."""

    question: str | None = None
    labels: tuple[str, ...] = ()  # one per rating value, low to high
    thanks: str | None = None
    extra_questions: tuple[ExtraQuestion, ...] = ()
    followup: Followup | None = None  # the unhappy answer's follow-up; None: the product's own
    followup_satisfied: Followup | None = None  # None: a satisfied answer just gets thanks
    colour: str | None = None  # "#rrggbb"
    logo: Logo | None = None
    mail_from: str | None = None
    reply_domain: str | None = None

    @property
    def empty(self) -> bool:
        return self == CustomSurvey()

    def labels_for(self, scale_name: str) -> tuple[str, ...]:
        """Return the labels when there is one per value of this scale, else () (the scale's own labels)."""
        from tracker.scales import SCALES

        return self.labels if len(self.labels) == len(SCALES[scale_name].values) else ()


# Another name for the same thing, for code that only reads its text.
SurveyText = CustomSurvey


@dataclass(frozen=True)
class SurveyEntry:
    """One `[[surveys]]` entry: which surveys it is for (None: any) and what it sets (None: leaves as is)."""

    line: int
    brand: str | None = None  # lower case
    source: str | None = None  # lower case
    locale: str | None = None
    settings: CustomSurvey = CustomSurvey()
    set_fields: frozenset[str] = frozenset()  # the CustomSurvey fields this entry sets

    @property
    def rank(self) -> int:
        return sum(weight for name, weight in WEIGHTS.items() if getattr(self, name) is not None)

    def matches(self, brand: str | None, source: str | None, locale: str | None) -> bool:
        wanted = {"brand": (brand or "").strip().lower(), "source": (source or "").strip().lower(),
                  "locale": (locale or "").strip().lower()}
        return all(getattr(self, name) in (None, wanted[name]) for name in SELECTORS)


@dataclass(frozen=True)
class SurveysFile:
    """Every entry of a surveys file, in file order."""

    path: Path
    entries: tuple[SurveyEntry, ...] = ()

    def pick(self, brand: str | None, source: str | None, locale: str | None) -> CustomSurvey | None:
        """Return what the entries matching a survey set, merged from the most general to the most specific.

        Each field comes from the most specific matching entry that sets it (brand over source over locale;
        between equals, the later in the file); None when no entry matches.
        """
        matching = sorted((e for e in self.entries if e.matches(brand, source, locale)),
                          key=lambda e: (e.rank, e.line))
        if not matching:
            return None
        merged = CustomSurvey()
        for entry in matching:
            merged = replace(merged, **{name: getattr(entry.settings, name) for name in entry.set_fields})
        return merged

    @property
    def brands(self) -> tuple[str, ...]:
        return tuple(sorted({e.brand for e in self.entries if e.brand}))

    def logos(self) -> dict[str, Logo]:
        """Return every logo by its file name (digest.ext), as the logo route serves them."""
        return {e.settings.logo.filename: e.settings.logo for e in self.entries if e.settings.logo}


FIELD_NAMES = tuple(f.name for f in fields(CustomSurvey))
