"""Re-ingest standard events (and survey events) from a JSON-lines file into the event log, or say what would change.

Each line is one standard event (SPEC §4, §10). A line may name its own `source` (export-log writes it,
so every event keeps the source it came from); otherwise the replay's source applies. The lines export-log writes
for recovery cases and their new surveys still to send, opt-outs, what retention retired, customers' profiles and API
keys are no events: replay writes them itself as it reads them (tracker.ingest.kept).
Bad lines are reported with their number and never block the others.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from collections import Counter
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field

from marshmallow import ValidationError

from tracker import text as jsontext
from tracker.config import Settings
from tracker.events import ANSWERED, SENT, SURVEY_TYPES, parse_event
from tracker.ingest import kept
from tracker.ingest.optout_lines import OptOutLine
from tracker.ingest.restore import FIELD as RESTORE
from tracker.ingest.restore import Restore, restore_from_line, restore_record
from tracker.ingest.survey_events import IMPORTED, survey_key
from tracker.model import DAY_MS, Event
from tracker.store import Store, keys, ticket_key
from tracker.surveys.optout import address_digests
from tracker.surveys.policy import stale_before
from tracker.surveys.tokens import survey_id

RESOLVED = ("ticket.solved", "ticket.closed")
RESOLVED_STATUSES = ("solved", "closed")
ORDER_STEPS = {"created": 0, "fulfilled": 1, "refunded": 2, "cancelled": 3}  # as apply_order.lua orders one instant
# A line's own source may be any such name: export-log writes the sources of imported ratings too.
SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


@dataclass
class ReplayReport:
    """What a replay appended (or, dry, would append), and what its solves and answers do."""

    appended: int = 0
    duplicates: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    surveys_scheduled: int = 0  # solves whose survey is still to come: none of the file's survey lines settles it
    surveys_too_old: int = 0  # solves whose survey would already have expired: skipped, never mailed
    answers: int = 0
    reminders: int = 0  # survey.sent lines whose reminder is still due: scheduled with the survey
    errors: list[tuple[int, str]] = field(default_factory=list)
    restored: Counter[str] = field(default_factory=Counter)  # kept lines written (dry: to write), by kept.label
    restored_already: int = 0  # cases, opt-outs, retired sums, API keys and new surveys the store holds already
    profiles_held: int = 0  # customers' profiles the store holds as the line has them already
    unverified: int = 0  # opt-outs kept by hash whose secret key could not be compared with this install's


@dataclass(frozen=True)
class KeptAt:
    """A line carrying a case, an opt-out or retired sums (tracker.ingest.kept), and its number in the file."""

    number: int
    kept: kept.Kept


def delivery_id(event: Event) -> str:
    """Name a replayed event's delivery, so replaying a file twice appends it once."""
    return f"replay:{event.source}:{event.id}"


def replay_file(store: Store, settings: Settings, lines: Iterable[bytes], source: str,
                known_sources: Collection[str], dry_run: bool = False, now_ms: int | None = None) -> ReplayReport:
    """Append each valid line once (deduplicated by source and event id), or only count when dry_run (which writes
    nothing: it only asks whether each line was replayed before)."""
    report = ReplayReport()
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    stale = stale_before(settings, now_ms)
    foreseen = Foreseen()
    for read in _survey_lines_first(lines, source, known_sources, report):
        if isinstance(read, KeptAt):
            _restore_kept(store, settings, read, report, dry_run)
            foreseen.note_opt_out(read.kept)
            continue
        event, restore = read
        if dry_run:
            seen = store.delivered(delivery_id(event))
        else:
            beside = [{RESTORE: restore_record(restore)}] if restore is not None else []
            seen = store.append_delivery(delivery_id(event), [event], beside=beside) < 0
        if seen:
            report.duplicates += 1
            continue
        report.appended += 1
        report.by_type[event.type] += 1
        report.answers += event.type == ANSWERED
        report.reminders += restore is not None and restore.reminder_at_ms is not None
        foreseen.add(event, restore, settings)
        if _surveyable(event, settings) and event.at_ms + _delay_ms(event, settings) < stale:
            report.surveys_too_old += 1
    report.surveys_scheduled = foreseen.to_send(store, settings, now_ms)
    return report


def _restore_kept(store: Store, settings: Settings, read: KeptAt, report: ReplayReport, dry_run: bool) -> None:
    """Write (or, dry, only look for) what a kept line carries, counting what it does."""
    try:
        new = kept.restore_kept(store, settings, read.kept, dry_run)
    except kept.REFUSED as exc:
        report.errors.append((read.number, str(exc)))
        return
    if new:
        report.restored[kept.label(read.kept)] += 1
    elif kept.label(read.kept) == "profile":  # merged, not kept whole: counted apart from the records kept whole
        report.profiles_held += 1
    else:
        report.restored_already += 1
    report.unverified += kept.unverified(settings, read.kept)


def _survey_lines_first(lines: Iterable[bytes], source: str, known_sources: Collection[str],
                        report: ReplayReport) -> Iterator[tuple[Event, Restore | None] | KeptAt]:
    """Yield each valid line's (event, restore), the bad ones reported: export-log's survey lines first, then every
    other line, each in the file's order. A line carrying a case or an opt-out is yielded as it is read (KeptAt):
    written then, it holds before any line but a survey line is appended, wherever the file has it.

    export-log writes the survey outcomes after the events, and replay appends as it reads: the workers applied a
    solve, and the sweep could mail its survey, before the line saying it went out (or was answered or skipped)
    was applied, perhaps in another shard. Appended first, those lines are applied first, so a solve the file
    settles finds its survey recorded. The other lines wait in a temporary file (on disk: a file of millions of
    lines needs no memory for them), read back once the survey lines are appended.

    Only export-log's survey lines go first (first_of_all): each says whom and what its survey counted for. A
    survey.answered line without a restore, an answer collected elsewhere that may name only its ticket, keeps its
    place: it counts for the agent, team and tags its ticket's solve gives it, so the solve must come first."""
    with tempfile.TemporaryFile() as later:
        for number, raw in enumerate(lines, 1):
            read = _event(raw, source, known_sources, number, report)
            if read is None:
                continue
            if isinstance(read, KeptAt) or first_of_all(*read):
                yield read
            else:
                later.write(b"%d\t%s\n" % (number, raw.rstrip(b"\r\n")))
        later.seek(0)
        for spooled in later:
            where, _, raw = spooled.partition(b"\t")
            read = _event(raw, source, known_sources, int(where), report)
            if read is not None and not isinstance(read, KeptAt):  # read once already: a valid event
                yield read


def first_of_all(event: Event, restore: Restore | None) -> bool:
    """Say whether a line is one of export-log's survey outcomes, which replay appends before the other lines: a
    survey.sent or survey.skipped (replay-only), or a survey.answered with its restore."""
    return event.type in SURVEY_TYPES and (event.type != ANSWERED or restore is not None)


@dataclass
class Foreseen:
    """What the lines replayed leave due, as the workers will find it: each ticket's (order's) statuses, and the
    surveys the file's own survey lines settle (the sweep mails none of those)."""

    statuses: dict[str, list[tuple[int, int, str, str]]] = field(default_factory=dict)  # key: (at, step, id, status)
    settled: set[str] = field(default_factory=set)  # the surveys a survey line records (sent, answered, skipped)
    surveyed: dict[str, int] = field(default_factory=dict)  # key: until when a survey line's survey blocks another
    customers: dict[str, str] = field(default_factory=dict)  # key: the address its newest event names
    opted_out: set[str] = field(default_factory=set)  # the file's opt-outs: addresses, and digests of erased ones

    def note_opt_out(self, kept_line: kept.Kept) -> None:
        """Note an opt-out the file carries (dry, it is not written): the sweep mails no survey to it."""
        if isinstance(kept_line, OptOutLine):
            self.opted_out.update(value for value in (kept_line.email, kept_line.digest) if value)

    def add(self, event: Event, restore: Restore | None, settings: Settings) -> None:
        """Note what one replayed event does to its ticket's (order's) survey."""
        if event.type in SURVEY_TYPES:
            self._add_survey(event, restore or Restore(), settings)
            return
        if event.ticket is not None and event.ticket.status:
            key = ticket_key(event.source, event.ticket.id)
            self.statuses.setdefault(key, []).append((event.at_ms, 0, event.id, event.ticket.status))
        elif event.order is not None and settings.order_survey_delay is not None:
            key = keys.ORDER_DUE + ticket_key(event.source, event.order.id)
            status = event.order.status
            self.statuses.setdefault(key, []).append((event.at_ms, ORDER_STEPS.get(status, 0), event.id, status))
        else:
            return
        if event.customer.email:
            self.customers[key] = event.customer.email.strip().lower()

    def _add_survey(self, event: Event, restore: Restore, settings: Settings) -> None:
        assert event.answer is not None  # the schema requires it
        key = survey_key(event)
        solved = event.answer.solved_at_ms
        sid = restore.survey or (survey_id(key, solved) if solved is not None else None)
        if sid:
            self.settled.add(sid)
        own = restore.survey is not None and sid not in (survey_id(key, solved or 0), survey_id(key, IMPORTED))
        if event.type in (ANSWERED, SENT) and not own:
            # The ticket's survey (Store.settle_sent): the sweep skips the ticket's solve while it is answered or
            # still takes answers (tracker.surveys.send: already_surveyed).
            sent_ms = restore.sent_at_ms or event.at_ms
            until = (2 ** 62 if event.type == ANSWERED else
                     restore.expires_at_ms or sent_ms + settings.survey_expiry_days * DAY_MS)
            self.surveyed[key] = max(self.surveyed.get(key, 0), until)

    def to_send(self, store: Store, settings: Settings, now_ms: int) -> int:
        """Count the surveys the sweep will mail: each ticket's (order's) current solve that is not too old, that no
        survey line settles, and whose customer has not opted out (in the store, or by a line of the file)."""
        stale = stale_before(settings, now_ms)
        count = 0
        for key, statuses in self.statuses.items():
            order = key.startswith(keys.ORDER_DUE)
            solved = _fulfilled_at(statuses) if order else _solved_at(statuses)
            delay_s = (settings.order_survey_delay or 0) if order else settings.survey_delay
            if solved is None or solved + delay_s * 1000 < stale:
                continue
            if survey_id(key, solved) in self.settled or self.surveyed.get(key, 0) > now_ms:
                continue
            if (email := self.customers.get(key)) and self._opted_out(store, settings, email):
                continue
            count += 1
        return count

    def _opted_out(self, store: Store, settings: Settings, email: str) -> bool:
        """Say whether an address opted out, as the sweep will find it (by hash only where the secret is set)."""
        digests = address_digests(settings, email) if settings.secret_key else []
        if email in self.opted_out or not self.opted_out.isdisjoint(digests):
            return True
        return store.opt_out(email, digests).reason is not None


def _solved_at(statuses: list[tuple[int, int, str, str]]) -> int | None:
    """Return a ticket's current solve as apply_ticket.lua finds it in its status history (None: not solved)."""
    current, solved = "", None
    for at, _, _, status in sorted(statuses, key=lambda entry: (entry[0], f"{entry[2]}|{entry[3]}")):
        if status == "solved" or (status in RESOLVED_STATUSES and current not in RESOLVED_STATUSES):
            solved = at
        elif status not in RESOLVED_STATUSES:
            solved = None
        current = status
    return solved


def _fulfilled_at(statuses: list[tuple[int, int, str, str]]) -> int | None:
    """Return when an order was fulfilled while that is its newest status (apply_order.lua), else None."""
    current: tuple[int, int, str, str] | None = None
    for entry in sorted(statuses):
        if current is None or not (entry[3] == "refunded" and current[3] == "cancelled"):
            current = entry
    return current[0] if current is not None and current[3] == "fulfilled" else None


def _event(raw: bytes, source: str, known_sources: Collection[str], number: int,
           report: ReplayReport) -> tuple[Event, Restore | None] | KeptAt | None:
    """Read one line into an event and the restore it carries (export-log's), or the case or opt-out it carries, or
    note why it cannot be one."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        report.errors.append((number, f"not UTF-8 text (byte {exc.start + 1} of the line)"))
        return None
    if not text.strip():
        return None
    try:
        data = jsontext.loads(text)
    except json.JSONDecodeError as exc:
        report.errors.append((number, f"not valid JSON ({exc.msg} at column {exc.colno})"))
        return None
    except (ValueError, RecursionError):
        report.errors.append((number, "not valid JSON (nested too deeply)"))
        return None
    if not isinstance(data, dict):
        report.errors.append((number, "not a JSON object"))
        return None
    if data.get("type") in kept.TYPES:
        try:
            return KeptAt(number, kept.read_kept(data))
        except ValidationError as exc:
            messages = json.dumps(exc.messages, sort_keys=True)
            report.errors.append((number, f"not a valid {data['type']} line: {messages}"))
            return None
    line_source = data.pop("source", source)
    restore_part = data.pop(RESTORE, None)
    if line_source not in known_sources and not (isinstance(line_source, str) and SOURCE_NAME.match(line_source)):
        report.errors.append((number, f"source {line_source!r} is not a source name; known: "
                                      f"{', '.join(sorted(known_sources))}"))
        return None
    try:
        event = parse_event(data, line_source)
        restore = None if restore_part is None else _restore(restore_part)
    except ValidationError as exc:
        report.errors.append((number, f"not a valid event: {json.dumps(exc.messages, sort_keys=True)}"))
        return None
    if restore is not None and event.type not in SURVEY_TYPES:
        report.errors.append((number, f"not a valid event: {RESTORE} belongs to survey events only"))
        return None
    if restore is not None and restore.reminder_at_ms is not None and event.type != SENT:
        report.errors.append((number, f"not a valid event: a reminder ({RESTORE}.reminder_at) belongs to survey.sent "
                                      "lines only"))
        return None
    return event, restore


def _restore(part: object) -> Restore:
    """Read a line's restore, its problems named under its field as the event's are under theirs."""
    try:
        return restore_from_line(part)
    except ValidationError as exc:
        raise ValidationError({RESTORE: exc.messages}) from None


def _surveyable(event: Event, settings: Settings) -> bool:
    """Say whether an event makes a survey due: a solve, or a fulfilment when orders are surveyed."""
    return event.type in RESOLVED or (event.type == "order.fulfilled" and settings.order_survey_delay is not None)


def _delay_ms(event: Event, settings: Settings) -> int:
    return ((settings.order_survey_delay or 0) if event.order else settings.survey_delay) * 1000
