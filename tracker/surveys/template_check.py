"""The operator's survey mail templates, rendered at start-up with sample surveys.

Compiling (tracker.operator_templates) finds what cannot parse. What fails only when rendered, a variable the mail
does not have (`{{ greting }}`: the mail renders with StrictUndefined), a filter given a value it cannot take, a
branch only one scale or language takes, would otherwise fail every survey at send time, each one recorded as
`failed: mail_not_built` and never mailed. So the processes that send (and `tracker check`) render the mail and its
reminder once for every language, scale and kind, with a name and a subject and without, and for every shape of
surveys-file entry, and refuse to start with one line naming the template, its line and the sample that failed.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Iterator
from dataclasses import dataclass

from tracker.config import ConfigError, Settings
from tracker.i18n.catalogue import SUPPORTED
from tracker.model import Survey
from tracker.operator_templates import SUFFIXES
from tracker.scales import SCALES
from tracker.surveys.custom import CustomSurvey
from tracker.surveys.custom.model import FIELD_NAMES
from tracker.surveys.message import build_message, custom_survey, reminder_message

SAMPLE_EXPIRES_MS = 1_798_761_600_000  # 2027-01-01: any time renders alike


@dataclass(frozen=True)
class Sample:
    """One survey the check renders: what a template may branch on."""

    lang: str
    scale: str
    kind: str
    named: bool
    brand: str | None = None
    source: str = "standard"
    reminder: bool = False

    def describe(self) -> str:
        return ", ".join(part for part in (
            self.lang, self.scale, f"{self.kind} survey", "with a name and a subject" if self.named else
            "without a name or a subject", self.reminder and "its reminder", self.brand and f"brand {self.brand}",
            self.source != "standard" and f"source {self.source}") if part)

    def survey(self) -> Survey:
        return Survey(sid="templatecheck", tkey=f"{self.source}:1001", kind=self.kind, scale=self.scale,
                      customer="kari.nordmann@example.com", source=self.source, status="sending", ticket_id="1001",
                      subject="My order has not arrived" if self.named else None, brand=self.brand, lang=self.lang,
                      expires_at_ms=SAMPLE_EXPIRES_MS)


def samples(settings: Settings) -> Iterator[Sample]:
    """Every mail sample: each language, scale and kind, named and not; each reminder; each surveys-file entry."""
    for lang in SUPPORTED:
        for scale in SCALES:
            for kind in ("ticket", "order"):
                for named in (True, False):
                    yield Sample(lang, scale, kind, named)
        yield Sample(lang, settings.survey_scale, "ticket", True, reminder=True)
    yield from entry_samples(settings)


def entry_samples(settings: Settings) -> Iterator[Sample]:
    """A sample for each surveys-file entry's brand and source, in its language (else English), in every scale.

    Only one per shape of what the entry sets (shape, below): what a template can branch on
    is whether a question, labels, colour, logo, thanks or follow-up are set, and the extra questions' types, not
    their words, so a file of a hundred brands costs the check a few renders, not a few thousand."""
    seen: set[tuple[object, ...]] = set()
    for entry in settings.surveys.entries if settings.surveys else ():
        lang = entry.locale if entry.locale in SUPPORTED else "en"
        for scale in SCALES:
            sample = Sample(lang, scale, "ticket", True, entry.brand, entry.source or "standard")
            key = (lang, scale, shape(custom_survey(settings, sample.survey()), scale))
            if key not in seen:
                seen.add(key)
                yield sample


def shape(custom: CustomSurvey | None, scale: str) -> tuple[object, ...]:
    """What of a surveys-file entry a template can tell apart: which fields are set, and the extra questions'
    types."""
    if custom is None:
        return ()
    return (*(bool(getattr(custom, name)) for name in FIELD_NAMES if name not in ("labels", "extra_questions")),
            bool(custom.labels_for(scale)), tuple(question.type for question in custom.extra_questions))


def check_mail_templates(settings: Settings) -> None:
    """Render every sample's mail with the operator's mail templates; raise ConfigError with the first fault."""
    folder = os.path.join(settings.template_dir, "mail") if settings.template_dir else None
    if folder is None or not any(name.endswith(SUFFIXES) for name in _names(folder)):
        return  # the packaged templates: the suite renders them
    for sample in samples(settings):
        survey = sample.survey()
        name = "Kari Nordmann" if sample.named else None
        try:
            if sample.reminder:
                reminder_message(settings, survey, name)
            else:
                build_message(settings, survey, name, SAMPLE_EXPIRES_MS)
        except Exception as exc:  # whatever a template raises, it would raise for every such survey
            raise ConfigError(fault_line(exc, folder, f"the survey mail fails to render ({sample.describe()})")) \
                from None


def _names(folder: str) -> list[str]:
    try:
        return os.listdir(folder)
    except OSError:
        return []


def fault_line(exc: BaseException, folder: str, what: str) -> str:
    """Say in one line what failed: `TRACKER_TEMPLATE_DIR: <file>:<line>: <what>: <error>`, the file and line of the
    operator's template the fault was raised in (Jinja's frames name it), when one of them was."""
    inside = [frame for frame in traceback.extract_tb(exc.__traceback__)
              if os.path.abspath(frame.filename).startswith(os.path.abspath(folder) + os.sep)]
    where = f"{inside[-1].filename}:{inside[-1].lineno}: " if inside else ""
    error = " ".join(f"{type(exc).__name__}: {exc}".split())
    return f"TRACKER_TEMPLATE_DIR: {where}{what}: {error}"
