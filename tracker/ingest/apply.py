"""Drain the event log shard by shard and apply it: tickets, orders, customers, due surveys.

Each shard has one applier at a time: a drain takes the shard's lease (renewed with every batch,
released when it is done), applies the entries after the shard's cursor in order, and moves the
cursor past them in the same step that renews the lease. Any number of workers on any number of
machines may drain at once; a crashed applier's shard is taken over once its lease runs out and
applied again from the cursor (applying is idempotent).

An event naming its customer only by an id whose alias is not known yet (the event introducing it
may be in another shard, or later in the stream), or whose source's look-up is down, is set waiting
instead of parked: it is tried again at once when its alias becomes known, else on a backoff, and
parked with its reason only after RETRY_LIMIT tries. It never holds up the rest of its shard.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from tracker.config import Settings
from tracker.errors import StorageUnavailable
from tracker.events import SURVEY_TYPES, event_from_record
from tracker.ingest.enrich import enrich
from tracker.ingest.restore import FIELD as RESTORE
from tracker.ingest.restore import Restore, restore_from_record
from tracker.ingest.survey_events import (
    Known,
    about_ticket,
    apply_survey_event,
    introduces_with,
    skip_stale_solve,
    stale_key,
    survey_key,
)
from tracker.model import DAY_MS, Event
from tracker.store import Store
from tracker.store.base import is_outage
from tracker.store.log import SHARDS, ShardOpened, ShardStep, Waiting, entry_key, kick_group
from tracker.store.state import TOO_OLD
from tracker.surveys.policy import stale_before
from tracker.text import mended

log = logging.getLogger(__name__)
BATCH = 200
LEASE_MS = 30_000  # a crashed applier's shard waits this long for another; renewed with every batch
RETRY_FIRST_MS = 1_000  # a waiting entry is tried again after 1 s, 2 s, 4 s ... at most RETRY_MAX_MS apart
RETRY_MAX_MS = 600_000
RETRY_LIMIT = 12  # tries before a waiting entry is parked: about 37 minutes
WAITING_BATCH = 500  # waiting entries looked at per pass over a shard, the soonest due first


@dataclass
class Applied:
    """What became of a batch of entries: how many applied, which wait for their customer."""

    applied: int = 0
    waiting: list[Waiting] = field(default_factory=list)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _email_for(event: Event, known: dict[tuple[str, str], str], store: Store) -> str | None:
    """Return the customer's email: given, introduced earlier in the batch, or known by the alias index."""
    if event.customer.email:
        return event.customer.email
    if not event.customer.id:
        return None
    alias = (event.source, event.customer.id)
    return known.get(alias) or store.resolve_alias(*alias)


def _aliases_in_batch(events: list[Event]) -> dict[tuple[str, str], str]:
    """Collect the aliases a batch introduces: a later event in it may rely on an earlier one's."""
    known: dict[tuple[str, str], str] = {}
    for event in events:
        email = event.customer.email
        if not email:
            continue
        if event.customer.id:
            known[(event.source, event.customer.id)] = email
        if event.order:
            known[(event.source, f"order:{event.order.id}")] = email
    return known


def _read(store: Store, shard: int,
          entries: Sequence[tuple[str, str]]) -> list[tuple[str, str, Event, Restore | None]]:
    """Turn log entries into events (each with the restore a replayed survey keeps beside it), parking each one that
    is not a valid record."""
    read = []
    for entry_id, payload in entries:
        try:
            record = json.loads(payload)
            event = event_from_record(record)
            restore = restore_from_record(record.get(RESTORE)) if event.type in SURVEY_TYPES else None
        except ValueError as exc:
            store.dead_letter(shard, entry_id, payload, f"malformed record: {exc}")
            continue
        read.append((entry_id, payload, event, restore))
    return read


def apply_entries(store: Store, settings: Settings, shard: int, entries: Sequence[tuple[str, str]]) -> Applied:
    """Apply a shard's entries in order, park the ones that can never apply, and say which must wait."""
    return apply_batches(store, settings, {shard: entries})[shard]


def apply_batches(store: Store, settings: Settings,
                  batches: Mapping[int, Sequence[tuple[str, str]]]) -> dict[int, Applied]:
    """Apply the entries of several shards together (each shard's in order), as apply_entries does one shard's: a
    drain's round trips are per step, not per shard.

    An entry that raises (a bug, or a value no step can take) must not hold up its shards, which would otherwise
    be drained again from the same cursor and fail again for ever: the batch is applied again an entry at a time
    (applying is idempotent), and each entry that still raises is parked with its error. Redis being unavailable is
    no such error: it is raised, and the shards are drained again later from their cursors.
    """
    try:
        return _apply_together(store, settings, batches)
    except Exception as exc:
        if isinstance(exc, StorageUnavailable) or is_outage(exc):
            raise
        log.error("a batch of %d log entries raised %s; applying them one at a time",
                  sum(len(entries) for entries in batches.values()), type(exc).__name__)
    results = {shard: Applied() for shard in batches}
    for shard, entries in batches.items():
        for entry_id, payload in entries:
            try:
                one = _apply_together(store, settings, {shard: [(entry_id, payload)]})[shard]
            except Exception as exc:
                if isinstance(exc, StorageUnavailable) or is_outage(exc):
                    raise
                error = mended(f"{type(exc).__name__}: {exc}")
                log.error("event %s of log shard %d could not be applied: %s", entry_id, shard, error)
                store.dead_letter(shard, entry_id, payload, f"apply failed: {error}")
                continue
            results[shard].applied += one.applied
            results[shard].waiting.extend(one.waiting)
    return results


def _apply_together(store: Store, settings: Settings,
                    batches: Mapping[int, Sequence[tuple[str, str]]]) -> dict[int, Applied]:
    read = [(shard, *entry) for shard, entries in batches.items() for entry in _read(store, shard, entries)]
    events, down = enrich([event for _, _, _, event, _ in read], settings, store)
    known = _aliases_in_batch(events)
    results = {shard: Applied() for shard in batches}
    ready: list[tuple[int, str, str, Event, str, Restore | None]] = []
    for (shard, entry_id, payload, _, restore), event in zip(read, events, strict=True):
        email = _email_for(event, known, store)
        if email is None and (event.source in down or event.customer.id):
            reason = "lookup" if event.source in down else "alias"
            results[shard].waiting.append(Waiting(entry_id, 0, 0, reason, event.source, event.customer.id or ""))
        elif email is None:
            store.dead_letter(shard, entry_id, payload, "unknown customer: no email and no customer id")
        else:
            ready.append((shard, entry_id, payload, event, email, restore))
    errors = _apply(store, settings, [(event, email) for _, _, _, event, email, _ in ready],
                    [restore for *_, restore in ready])
    for (shard, entry_id, payload, *_), error in zip(ready, errors, strict=True):
        if error is None:
            results[shard].applied += 1
        else:
            log.error("event %s of log shard %d could not be applied: %s", entry_id, shard, error)
            store.dead_letter(shard, entry_id, payload, f"apply failed: {error}")
    return results


def _apply(store: Store, settings: Settings, pairs: list[tuple[Event, str]],
           restores: Sequence[Restore | None] = ()) -> list[str | None]:
    """Apply events in order of kind: state first, then survey events (each with its restore, if any), then the
    skips of stale solves."""
    now_ms = _now_ms()
    order_delay = -1 if settings.order_survey_delay is None else settings.order_survey_delay * 1000
    surveys = [i for i, (event, _) in enumerate(pairs) if event.type in SURVEY_TYPES]
    before = store.surveyed_states([survey_key(pairs[i][0]) for i in surveys if about_ticket(pairs[i][0])])
    stateful = [i for i, (event, _) in enumerate(pairs) if event.type not in SURVEY_TYPES
                or introduces_with(event, before)]
    results: list[str | int | None] = [None] * len(pairs)
    applied = store.apply_events([pairs[i] for i in stateful], settings.survey_delay * 1000, order_delay,
                                 stale_before(settings, now_ms), timeline_days=settings.log_retention_days,
                                 at_risk_score=settings.at_risk_score)
    for i, result in zip(stateful, applied, strict=True):
        results[i] = result
    errors = [r if isinstance(r, str) else None for r in results]
    stale = [i for i, result in enumerate(results) if result == TOO_OLD]
    # The tickets' states after the state step, read at once; each is taken out when an event about it applies.
    known = Known(store.surveyed_states([*(survey_key(pairs[i][0]) for i in surveys if errors[i] is None),
                                         *(stale_key(pairs[i][0]) for i in stale)]))
    # Survey events before the skips: a replayed survey keeps the attribution its event gives.
    for i in surveys:
        if errors[i] is None:
            event, email = pairs[i]
            errors[i] = apply_survey_event(store, settings, event, email, known,
                                           restores[i] if i < len(restores) else None)
    # The stale solves' tickets that survey events took (and wrote) are read again, at once.
    known.tickets.update(store.surveyed_states([key for key in (stale_key(pairs[i][0]) for i in stale)
                                                if key not in known.tickets]))
    for i in stale:
        skip_stale_solve(store, settings, pairs[i][0], now_ms, known)
    return errors


def _backoff_ms(tries: int) -> int:
    return min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** min(tries, 30))


def drain(store: Store, settings: Settings, holder: str, budget_s: float = 20.0,
          shards: Sequence[int] | None = None) -> tuple[int, tuple[int, ...]]:
    """Apply the new entries of the given shards (all by default) until each is empty or the budget is spent.

    Returns (entries applied, the shards left for another run when the budget ran out). A shard another
    applier holds is skipped: that applier looks at its shard again after releasing it. A pass over
    every shard also trims the applied entries older than TRACKER_LOG_RETENTION_DAYS.
    """
    # The answers and sends the drain records leave their outbox entries to its end, which forwards each survey
    # bucket once (its steps of many entries summed), after the shards are let go; nothing here reads them back.
    with store.forwarding_later(wait=False):
        return _drain(store, settings, holder, budget_s, shards)


def drain_group(store: Store, settings: Settings, holder: str, group: int,
                budget_s: float = 20.0) -> tuple[int, tuple[int, ...]]:
    """Apply the unread entries of a kicked group of shards (tracker.drain_kicked), again while appends come.

    The group's pending mark (claim_kick) is held while the task drains, so the webhooks of a busy group send no
    task each that would find its shards' leases held; it is taken when a drain is done and the shards looked at
    once more (take_kicked): an append that found the mark set was in its stream before that look, and one after it
    claims the mark and sends a task of its own. While the look finds entries and the mark is claimed again, the
    drain goes on. Returns what drain does: the shards left for another run (budget spent) come with the mark
    taken and the group's other unread shards with them. A drain longer than the mark lives (KICK_GROUP_TTL_MS)
    lets the group's webhooks send tasks again meanwhile, which find the leases held.
    """
    deadline = time.monotonic() + budget_s
    applied, shards = 0, store.kicked_work(group)
    while True:
        count, left = drain(store, settings, holder, max(deadline - time.monotonic(), 0.0), shards=shards)
        applied += count
        shards = store.take_kicked(group)
        if left or (shards and time.monotonic() >= deadline):
            return applied, tuple(sorted(set(left) | set(shards)))
        if not shards or not store.claim_kick(group):  # nothing came, or a webhook sent the next task
            return applied, ()


def _drain(store: Store, settings: Settings, holder: str, budget_s: float,
           shards: Sequence[int] | None) -> tuple[int, tuple[int, ...]]:
    deadline = time.monotonic() + budget_s
    # Kicked shards are opened at once (an empty one costs its one look); every shard (beat) is looked at first.
    todo = store.shards_with_work(list(SHARDS)) if shards is None else sorted(set(shards))
    # The shards of a kick group are drained together, one round trip a step for all of them; a drain holds one
    # group's leases at a time, so the tasks of the other groups go on meanwhile.
    groups = [[shard for shard in todo if kick_group(shard) == group] for group in sorted(set(map(kick_group, todo)))]
    applied = 0
    for n, group in enumerate(groups):
        left = group
        while left:
            token = f"{holder}:{uuid.uuid4().hex[:12]}"
            opened = store.open_log_shards(left, token, LEASE_MS, BATCH)
            if not opened:  # another applier holds them (and looks again before letting go), or nothing to do
                break
            released: set[int] = set()
            try:
                count, unfinished, released = _drain_shards(store, settings, token, opened, deadline)
            finally:
                if held := [shard for shard in opened if shard not in released]:
                    store.release_log_leases(held, token)
            applied += count
            if unfinished:
                return applied, tuple(sorted({*unfinished, *(shard for later in groups[n + 1:] for shard in later)}))
            # Released with the last look, nothing was left. Otherwise an append after the last look whose kick
            # found the lease taken would wait for beat: look again.
            left = store.shards_with_work([shard for shard in opened if shard not in released], waiting=False)
    if shards is None:
        store.trim_log(_now_ms() - settings.log_retention_days * DAY_MS)
    return applied, ()


def _drain_shards(store: Store, settings: Settings, token: str, opened: dict[int, ShardOpened],
                  deadline: float) -> tuple[int, list[int], set[int]]:
    """Apply the held shards' entries after their cursors, then their waiting entries, a step at a time: the
    batches applied together, then in one round trip each shard's cursor moved and its next batch read (after a
    short batch, its last look taken). Returns (applied, the shards left when the budget ran out, the shards whose
    lease went with their last look)."""
    applied = 0
    after = {shard: shard_opened.after for shard, shard_opened in opened.items()}
    entries = {shard: shard_opened.entries for shard, shard_opened in opened.items()}
    released: set[int] = set()
    while entries and time.monotonic() < deadline:
        batches = {shard: batch for shard, batch in entries.items() if batch}
        results = apply_batches(store, settings, batches) if batches else {}
        due = _now_ms() + _backoff_ms(0)
        steps = [ShardStep(shard, [entry_id for entry_id, _ in batch],
                           [entry._replace(due_ms=due) for entry in results[shard].waiting] if batch else [],
                           batch[-1][0] if batch else after[shard], look=len(batch) < BATCH)
                 for shard, batch in entries.items()]
        found = store.step_log_shards(token, LEASE_MS, BATCH, steps)
        entries = {}
        for step in steps:
            recorded, look = found[step.shard]
            if not recorded or look.lost:
                log.warning("log shard %d: the lease ran out; its new applier goes on from the cursor", step.shard)
                continue
            if step.passed:
                applied += results[step.shard].applied
                after[step.shard] = step.after
            if look.entries or not step.look:  # entries came meanwhile, or the batch was full: more may follow
                entries[step.shard] = look.entries
            elif look.released:
                released.add(step.shard)
            else:  # entries wait for their customer: the lease kept for the pass over them
                applied += _retry_waiting(store, settings, step.shard, token)
    return applied, sorted(entries), released


def _retry_waiting(store: Store, settings: Settings, shard: int, token: str) -> int:
    """Try a shard's waiting entries that are due, or whose alias has become known; park those out of tries."""
    waiting = store.waiting_entries(shard, WAITING_BATCH)
    if not waiting:
        return 0
    now_ms = _now_ms()
    due = [entry for entry in waiting if entry.due_ms <= now_ms]
    early = [entry for entry in waiting if entry.due_ms > now_ms and entry.customer_id]
    known = store.aliases_known([(entry.source, entry.customer_id) for entry in early])
    chosen = sorted([*due, *(entry for entry, email in zip(early, known, strict=True) if email)],
                    key=lambda entry: entry_key(entry.entry_id))
    if not chosen:
        return 0
    payloads = store.log_entries(shard, [entry.entry_id for entry in chosen])
    result = apply_entries(store, settings, shard, [(e.entry_id, payloads[e.entry_id]) for e in chosen
                                                    if e.entry_id in payloads])
    still = {entry.entry_id: entry for entry in result.waiting}
    due_ids = {entry.entry_id for entry in due}
    done: list[str] = []
    again: list[Waiting] = []
    for entry in chosen:
        if entry.entry_id not in still:
            done.append(entry.entry_id)  # applied, parked, or erased meanwhile
        elif entry.entry_id in due_ids:  # one more try spent (an early one keeps its schedule)
            tries, latest = entry.tries + 1, still[entry.entry_id]
            if tries >= RETRY_LIMIT:
                store.dead_letter(shard, entry.entry_id, payloads[entry.entry_id], _gave_up(latest, tries))
                done.append(entry.entry_id)
            else:
                again.append(latest._replace(tries=tries, due_ms=now_ms + _backoff_ms(tries)))
    store.advance_log(shard, token, LEASE_MS, done=done, waiting=again)
    return result.applied


def _gave_up(entry: Waiting, tries: int) -> str:
    if entry.reason == "lookup":
        return f"{entry.source} look-up unavailable after {tries} tries"
    return f"unknown customer: no email and no known alias after {tries} tries"
