"""GDPR erasure: remove every trace of one customer and take their answers off every aggregate.

The steps run in an order that makes a crashed erasure safe to run again: each survey goes with
its answer and its counts in one script; the log is swept next; the profile, which names the
customer's aliases, is deleted last. An unsubscribe or suppression is kept first, as a keyed hash of
the address (tracker.surveys.optout), so it outlives the address; the next event about the customer
starts a new profile.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from tracker.config import Settings
from tracker.events import RESOLVED_STATUSES, customer_address
from tracker.store import Store
from tracker.store.keys import ORDER_DUE
from tracker.surveys.optout import keep_through_erasure, opt_out
from tracker.surveys.tokens import survey_id

log = logging.getLogger(__name__)


def _survey_ids(store: Store, footprint: dict[str, Any]) -> list[str]:
    """Name every survey of the customer: indexed ones, and any a crash left unindexed (from the solves)."""
    sids = set(footprint["sids"])
    members = [*footprint["tickets"], *(ORDER_DUE + okey for okey in footprint["orders"])]
    for member, (record, history) in zip(members, store.surveyed_state(members), strict=True):
        solves = {str(at) for status, at in history if status in RESOLVED_STATUSES}
        if record.get("solved_at"):
            solves.add(record["solved_at"])
        sids.update(survey_id(member, at) for at in solves)
        if record.get("survey_sid"):
            sids.add(record["survey_sid"])
    return sorted(sids)


@dataclass(frozen=True)
class LogQuery:
    """What finds the log entries about a customer: needles, one of which every entry about them holds in lower case
    (Redis sifts each shard with them), and the exact test of the entries they let through."""

    needles: tuple[str, ...]
    matches: Callable[[dict[str, str]], bool]


def log_query(email: str, aliases: list[tuple[str, str]], tickets: list[str], orders: list[str]) -> LogQuery:
    """Return the query for log entries about the customer: by email anywhere, or by their ids."""
    return LogQuery(log_needles(email, aliases, tickets, orders), log_matcher(email, aliases, tickets, orders))


def log_needles(email: str, aliases: list[tuple[str, str]], tickets: list[str], orders: list[str]) -> tuple[str, ...]:
    """Return what every entry log_matcher takes holds, in lower case: the address (as written and as JSON escapes
    it) or, for an event naming the customer by id only, one of their ids as a JSON value (a string, or a number).

    Lua's string.lower folds ASCII only. The log is JSON in ASCII (the rest escaped), but a dead letter's reason is
    free text: an address with other letters is also sought by its longest ASCII stretch ("KÅRI@x.no" holds
    "ri@x.no" whatever its case), which lets through more to be tested, never fewer."""
    idents = {ident for _, ident in aliases}
    idents |= {ident.removeprefix("order:") for ident in idents}
    for member in (*tickets, *orders):  # "<source>:<id>"
        parts = member.split(":")
        idents |= {":".join(parts[i:]) for i in range(1, len(parts))}
    needles = {email.lower(), json.dumps(email)[1:-1].lower()}
    if not email.isascii():
        needles.add(max(re.findall(r"[\x00-\x7f]+", email.lower()), key=len, default=""))  # "" takes all
    for ident in filter(None, idents):
        needles.add(json.dumps(ident).lower())
        if ident.isascii() and ident.isdigit():  # a number, compact or as json.dumps spaces it
            needles.update(f"{colon}{ident}{end}" for colon in (":", ": ") for end in (",", "}"))
    return tuple(sorted(needles))


def log_matcher(email: str, aliases: list[tuple[str, str]], tickets: list[str],
                orders: list[str]) -> Callable[[dict[str, str]], bool]:
    """Return a test for log entries about the customer: by email anywhere, or by their ids."""
    escaped = {email, json.dumps(email)[1:-1]}  # as written, and as JSON writes non-ASCII
    pattern = re.compile("|".join(rf"(?<![\w.+-]){re.escape(e)}(?![\w-])" for e in escaped), re.IGNORECASE)
    alias_set = {(source, ident) for source, ident in aliases}
    owned = set(tickets) | set(orders)

    def matches(fields: dict[str, str]) -> bool:
        if any(pattern.search(value) for value in fields.values()):
            return True
        try:
            record = json.loads(fields.get("e", ""))
        except ValueError:
            return False
        if not isinstance(record, dict) or not isinstance(record.get("customer"), dict):
            return False
        if record["customer"].get("email"):
            return False  # someone else's event (ours would have matched by email above)
        source = str(record.get("source", ""))
        if (source, str(record["customer"].get("id") or "")) in alias_set:
            return True
        for part, prefix in (("ticket", ""), ("order", "order:")):
            about = record.get(part)
            ident = str(about.get("id") or "") if isinstance(about, dict) else ""
            if ident and (f"{source}:{ident}" in owned or (source, prefix + ident) in alias_set):
                return True
        return False

    return matches


@dataclass(frozen=True)
class ErasureReport:
    """What an erasure removed: all zeros when nothing was stored about the customer."""

    customer: str
    surveys: int = 0
    responses: int = 0
    sent: int = 0
    log_events: int = 0
    dead_letters: int = 0
    tickets: int = 0
    orders: int = 0
    aliases: int = 0
    profile: int = 0
    keys: int = 0
    cases: int = 0  # recovery cases
    suppressed: int = 0  # 1 when the address left the plain suppression list (still suppressed, by a keyed hash)

    @property
    def found(self) -> bool:
        """Say whether anything was erased."""
        return any(count for name, count in asdict(self).items() if name != "customer")


def erase_customer(store: Store, settings: Settings, email: str) -> ErasureReport:
    """Erase everything stored about a customer except their opt-out (kept by hash); return what was removed.

    email must be an address (customer_address): the log is swept for it as a word, so a blank or a bare word
    would take other customers' events with it. Raises ValueError for anything else; the callers say so first.
    """
    address = customer_address(email)
    if address is None:
        raise ValueError(f"{email!r} is not an email address")
    email = address
    keep_through_erasure(store, settings, email, opt_out(store, settings, email))
    footprint = store.customer_footprint(email)
    surveys = responses = sent = 0
    for sid in _survey_ids(store, footprint):
        survey, response, uncounted = store.erase_survey(sid, email)
        surveys, responses, sent = surveys + survey, responses + response, sent + uncounted
    query = log_query(email, footprint["aliases"], footprint["tickets"], footprint["orders"])
    logged = store.erase_log_entries(query.needles, query.matches)
    records = store.erase_records(email, footprint["tickets"], footprint["orders"], footprint["aliases"])
    cases = store.erase_cases(email)
    store.erase_notices(email)  # what the product told of them (events out, notes, cases) names them
    store.erase_deliveries(email)  # and the records of delivering it (GET /api/v1/deliveries) name them too
    report = ErasureReport(
        customer=email, surveys=surveys, responses=responses, sent=sent, log_events=logged["log_events"],
        dead_letters=logged["dead_letters"], tickets=records["tickets"], orders=records["orders"],
        aliases=records["aliases"], profile=int(bool(footprint["profile"])), keys=store.erase_customer_keys(email),
        cases=cases, suppressed=records["suppressed"])
    log.info("customer erased", extra={k: v for k, v in asdict(report).items() if k != "customer"})
    return report
