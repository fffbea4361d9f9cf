"""The replay lines that carry stored state rather than an event: recovery cases and their new surveys still to send,
opt-outs, retired sums, customers' profiles and API keys.

Replay writes them itself as it reads them (tracker.ingest.replay), before it appends any line but the survey lines:
none of them is an event for the workers to apply, and an opt-out must hold before a solve it covers is applied and
its survey swept. Each write keeps what is there already (retired sums: carried once, tracker.ingest.retired_lines;
a profile's orders: merged with the replayed events of them, tracker.ingest.profile_lines; an API key or a case's new
survey: written once, however often the file is replayed), so replaying twice changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tracker.config import Settings
from tracker.ingest import apikey_lines, case_lines, optout_lines, profile_lines, resurvey_lines, retired_lines
from tracker.ingest.optout_lines import KeyNotHeld, OptOutLine, optout_from_line, restore_optout
from tracker.ingest.resurvey_lines import HeldResurvey, NotCarried, restore_resurvey
from tracker.ingest.retired_lines import FirstActivity, RetiredSums
from tracker.model import Case
from tracker.store import Store
from tracker.store.apikeys import KeyClash, StoredKey
from tracker.store.profiles import CarriedProfile

TYPES = (*case_lines.TYPES, *resurvey_lines.TYPES, *optout_lines.TYPES, *retired_lines.TYPES, *profile_lines.TYPES,
         *apikey_lines.TYPES)
# What replay counts each kind under (ReplayReport.restored), in the order it prints them.
LABELS = ("case", "retired", "resurvey", "unsubscribed", "suppressed", "kept by hash", "retired sums",
          "first activity", "profile", "api key")
# A line that reads but is not written here, reported with its number: an opt-out hashed under a secret key this
# install lacks, an API key whose name or digest names another key here, a new survey whose case is not here.
REFUSED = (KeyNotHeld, KeyClash, NotCarried)


@dataclass(frozen=True)
class CarriedCounts:
    """A cases.retired line: what the case counters held beyond the cases the export carries."""

    counts: dict[str, int]


Kept = Case | CarriedCounts | HeldResurvey | OptOutLine | RetiredSums | FirstActivity | CarriedProfile | StoredKey


def read_kept(data: dict[str, Any]) -> Kept:
    """Read a line of one of TYPES, or raise ValidationError."""
    kind = data.get("type")
    if kind == case_lines.CASE:
        return case_lines.case_from_line(data)
    if kind == case_lines.RETIRED:
        return CarriedCounts(case_lines.retired_from_line(data))
    if kind == resurvey_lines.RESURVEY:
        return resurvey_lines.resurvey_from_line(data)
    if kind == apikey_lines.KEY:
        return apikey_lines.key_from_line(data)
    if kind == retired_lines.RETIRED:
        return retired_lines.sums_from_line(data)
    if kind == retired_lines.FIRST:
        return retired_lines.first_from_line(data)
    if kind == profile_lines.PROFILE:
        return profile_lines.profile_from_line(data)
    return optout_from_line(data)


# What each kind of line restores is counted as (an opt-out line says it: unsubscribed, suppressed, kept by hash).
LABEL_OF: dict[type, str] = {Case: "case", CarriedCounts: "retired", HeldResurvey: "resurvey", StoredKey: "api key",
                             RetiredSums: "retired sums", FirstActivity: "first activity", CarriedProfile: "profile"}


def label(kept: Kept) -> str:
    """Say what a line restores (one of LABELS)."""
    return kept.label if isinstance(kept, OptOutLine) else LABEL_OF[type(kept)]


def restore_kept(store: Store, settings: Settings, kept: Kept, dry_run: bool = False) -> bool:
    """Write what a line carries unless it is stored; say whether it was (or, dry, would be) new.

    Raises one of REFUSED for a line that cannot hold here (an opt-out kept by hash under a secret key this install
    does not hold, an API key clashing with one here, a new survey whose case is not here).
    """
    if isinstance(kept, Case):
        return store.restore_case(kept, dry_run)
    if isinstance(kept, CarriedCounts):
        return store.carry_case_counts(kept.counts, dry_run)
    if isinstance(kept, HeldResurvey):
        return restore_resurvey(store, kept, dry_run)
    if isinstance(kept, StoredKey):
        return store.restore_key(kept, dry_run)
    if isinstance(kept, RetiredSums):
        return store.carry_retired(kept.kind, kept.ident, kept.sums, kept.rollup, kept.daily, kept.last_response,
                                   dry_run)
    if isinstance(kept, FirstActivity):
        return store.carry_first_activity(kept.at_ms, dry_run)
    if isinstance(kept, CarriedProfile):
        return store.restore_profile(kept, dry_run)
    return restore_optout(store, settings, kept, dry_run)


def unverified(settings: Settings, kept: Kept) -> bool:
    """Say whether a line is an opt-out kept by hash that could not be checked to hold here."""
    return isinstance(kept, OptOutLine) and not optout_lines.verified(settings, kept)

