"""The short names a survey's hash gives the fields only Python names: written once here, not in every hash.

A survey's hash is a compact hash (a listpack) in which every field's name is stored beside its value, in each of
millions of surveys. The fields every survey or answer holds are stored under the codes below: what the survey is
about and by whom, the sums its answer counted (which Python computes and hands to the scripts), and its status,
times, rating and count of changes, which the scripts in tracker/store/lua name by their codes (each script says
which). Rarer fields (comment, reasons, reminder and reply state, errors) keep their names. Every read of a
survey's hash goes through expanded() and every name written or asked for through coded(), so no other Python
module knows the codes. Layout 4 and earlier stored the names: `tracker upgrade-store` renames them
(code_fields.lua).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

CODES: dict[str, str] = {
    # what the survey is about, written when it is made
    "tkey": "tk", "kind": "kd", "scale": "sc", "customer": "cu", "source": "so", "ticket_id": "ti", "subject": "sj",
    "agent_id": "ag", "agent_name": "an", "team": "tm", "brand": "br", "channel": "ch", "tags": "tg",
    "organisation": "og", "resolved_by": "rb", "lang": "lg", "solved_at": "sv",
    # what its answer counted (tracker.store.scores.COUNTED beside the rating), and the newest answer event's mark
    "value6": "v6", "satisfied": "sf", "promoter": "pr", "detractor": "dt", "nps": "np", "weight": "wt",
    "weighted": "wd", "day": "dy", "answer_event": "ae",
    # what the scripts read and write of every survey (by these codes): keep in step with tracker/store/lua
    "status": "st", "created_at": "ca", "sent_at": "sn", "expires_at": "ex", "answered_at": "aa", "first_at": "fa",
    "changes": "cg", "rating": "ra",
}
NAMES: dict[str, str] = {code: name for name, code in CODES.items()}


def coded(name: str) -> str:
    """Return the name a survey's hash stores a field under."""
    return CODES.get(name, name)


def coded_names(names: Iterable[str]) -> list[str]:
    return [CODES.get(name, name) for name in names]


def coded_mapping(record: Mapping[str, str]) -> dict[str, str]:
    """Return a survey's fields (by their names) as its hash stores them."""
    return {CODES.get(name, name): value for name, value in record.items()}


def expanded(record: Mapping[str, str]) -> dict[str, str]:
    """Return a survey's hash with every field by its name (a hash read before its upgrade holds the names
    themselves: those stand unless the code is there too)."""
    found = {name: value for name, value in record.items() if name not in NAMES}
    found.update((NAMES[code], value) for code, value in record.items() if code in NAMES)
    return found
