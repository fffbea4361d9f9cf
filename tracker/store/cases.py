"""Recovery cases: one hash per case and its bucket's indexes and counters, all in the case bucket's slot.

A case lives in the bucket of its customer (`{c<b>}`), so a customer's cases, the indexes that list them and the
counters that sum them are written by one script with the case. Listings read one page from each bucket's index
(ordered by member: open before closed, then by due time) and merge them: a page costs BUCKETS small range reads,
whatever the number of cases.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from tracker.model import CASE_ACTIVE, Case, CaseNote, Survey
from tracker.store import filed, keys
from tracker.store.base import RedisBase
from tracker.store.rollups import cross_label
from tracker.store.surveys import survey_from_hash

COUNTERS = ("opened", "active", "recovered", "not_recovered", "contacted", "contact_ms")
# What the counters of an install a replay came from held beyond the cases it carried (closed cases retention deleted
# keep counting), kept under these fields of bucket 0's counters: set, never added to, so replaying twice counts once.
CARRIED = "carried:"
# Beside COUNTERS: the cases counted labelled. A case a version before labels opened counts in "opened" alone, so
# the two part from the difference the labelling saw (cases_labelled) and the store reads as unlabelled again.
LABELLED = "labelled"
# Beside a case a replay carried: when the new survey its closing scheduled was due where it came from (ms).
RESURVEY_DUE = "resurvey_due"
ERASE_ATTEMPTS = 8  # an erasure reads a case again at most this often while other writers change it
ANY = "*"
UNASSIGNED = "-"


class CaseConflict(Exception):
    """Another writer changed the case since it was read: read it again and redo the change."""


@dataclass(frozen=True)
class CaseCounts:
    """What the case counters of every bucket add up to, and how many open cases are past due now."""

    opened: int = 0
    active: int = 0
    overdue: int = 0
    recovered: int = 0
    not_recovered: int = 0
    contacted: int = 0  # cases that had a first contact
    contact_ms: int = 0  # the sum of their times from opening to first contact


def index_member(case: Case) -> str:
    """Name a case in its indexes: open before closed, then by due time, then by id."""
    return f"{1 if case.closed else 0}|{case.due_at_ms:015d}|{case.id}"


def _owner_part(owner: str | None) -> str:
    return f"={owner}" if owner else UNASSIGNED


def _entries(case: Case) -> dict[str, str]:
    """Return the index keys a case is listed in, with its member there: while it is open or contacted, also the
    index of each of its labels (what the overdue count under a filter reads)."""
    bucket = keys.case_bucket(case.id)
    assert bucket is not None
    member = index_member(case)
    owner = _owner_part(case.owner)
    labelled = () if case.closed else case.labels or ()
    return {key: member for key in (
        keys.case_index(bucket, ANY, ANY), keys.case_index(bucket, ANY, case.status),
        keys.case_index(bucket, owner, ANY), keys.case_index(bucket, owner, case.status),
        keys.customer_cases(bucket, case.customer), *(keys.case_label_index(bucket, label) for label in labelled))}


def is_counter_field(name: str) -> bool:
    """Say whether a name is a case counter field: one of COUNTERS, or one of a label's ("team=billing|opened")."""
    label, _, counter = name.rpartition("|")
    return counter in COUNTERS and (not label or "=" in label)


def labels_of(values: Iterable[tuple[str, str]]) -> tuple[str, ...]:
    """Name the filter values a case counts under (its survey's, Facets.pairs): "team=billing", "tag=vip"."""
    return tuple(sorted({cross_label(name, value) for name, value in values}))


def case_to_hash(case: Case) -> dict[str, str]:
    """Write a case as its hash fields (absent values as empty strings); rev, notified and resurvey are the store's."""
    def text(value: object) -> str:
        return "" if value is None else str(value)

    return {
        "id": case.id, "customer": case.customer, "name": text(case.name), "ticket": text(case.ticket),
        "owner": text(case.owner), "status": case.status, "opened_at": str(case.opened_at_ms),
        "due_at": str(case.due_at_ms), "outcome": text(case.outcome), "survey": case.survey,
        "rating": text(case.rating), "scale": text(case.scale), "comment": text(case.comment),
        "source": text(case.source), "team": text(case.team), "agent": text(case.agent_id),
        "agent_name": text(case.agent_name), "first_contact_at": text(case.first_contact_at_ms),
        "closed_at": text(case.closed_at_ms),  # "resurvey" is only ever set once, by mark_resurvey
        "notes": json.dumps([{"at": n.at_ms, "by": n.by, "text": n.text} for n in case.notes],
                            separators=(",", ":"), ensure_ascii=False),
    } | ({} if case.labels is None else {"labels": "\n".join(case.labels)})


def case_from_hash(record: Mapping[str, str]) -> Case | None:
    """Read a case hash; None when there is none."""
    if not record.get("id"):
        return None

    def opt(name: str) -> str | None:
        return record.get(name) or None

    def opt_int(name: str) -> int | None:
        value = record.get(name)
        return int(value) if value else None

    notes = tuple(CaseNote(int(n["at"]), str(n["by"]), str(n["text"])) for n in json.loads(record.get("notes") or "[]"))
    return Case(
        id=record["id"], customer=record["customer"], ticket=opt("ticket"), owner=opt("owner"),
        status=record["status"], opened_at_ms=int(record["opened_at"]), due_at_ms=int(record["due_at"]),
        notes=notes, outcome=opt("outcome"), name=opt("name"), survey=record.get("survey", ""),
        rating=opt_int("rating"), scale=opt("scale"), comment=opt("comment"), source=opt("source"),
        team=opt("team"), agent_id=opt("agent"), agent_name=opt("agent_name"),
        first_contact_at_ms=opt_int("first_contact_at"), closed_at_ms=opt_int("closed_at"),
        resurvey=opt("resurvey"), rev=int(record.get("rev") or 0), notified=int(record.get("notified") or 0),
        labels=tuple(filter(None, record["labels"].split("\n"))) if "labels" in record else None)


def counts_of(case: Case | None) -> dict[str, int]:
    """Return what one case adds to its bucket's counters (each of COUNTERS)."""
    if case is None:
        return dict.fromkeys(COUNTERS, 0)
    contacted = case.first_contact_at_ms is not None
    return {"opened": 1, "active": int(case.status in CASE_ACTIVE), "recovered": int(case.status == "recovered"),
            "not_recovered": int(case.status == "not_recovered"), "contacted": int(contacted),
            "contact_ms": case.first_contact_at_ms - case.opened_at_ms if contacted
            and case.first_contact_at_ms is not None else 0}


def counted_fields(case: Case | None) -> dict[str, int]:
    """Return every counter field one case adds to: COUNTERS, and each again under each of its labels."""
    counts = counts_of(case)
    labelled = {f"{label}|{name}": count for label in (case.labels or () if case else ()) for name, count in
                counts.items()}
    return counts | labelled | {LABELLED: int(case is not None and case.labels is not None)}


def _deltas(old: Case | None, new: Case | None) -> list[tuple[str, int]]:
    """Return the counter changes that turn what old counted into what new counts."""
    was, now = counted_fields(old), counted_fields(new)
    return [(name, now.get(name, 0) - was.get(name, 0)) for name in {**was, **now}
            if now.get(name, 0) != was.get(name, 0)]


class Cases(RedisBase):
    """Open, read, write and list recovery cases."""

    def case(self, case_id: str) -> Case | None:
        """Return the case of this id, None when there is none (or the id is not a case id)."""
        if keys.case_bucket(case_id) is None:
            return None
        return case_from_hash(self.redis.hgetall(keys.case(case_id)))

    def cases(self, case_ids: Sequence[str]) -> list[Case]:
        """Return the cases of these ids that exist, in order, in one round trip."""
        wanted = [cid for cid in case_ids if keys.case_bucket(cid) is not None]
        if not wanted:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for cid in wanted:
            pipe.hgetall(keys.case(cid))
        return [case for record in pipe.execute() if (case := case_from_hash(record)) is not None]

    def write_case(self, new: Case, old: Case | None) -> int:
        """Write a case (a new one when old is None) with its counters and index entries; return its new rev.

        0: a new case that exists already (nothing written). CaseConflict: it changed since old was read.
        """
        before, after = _entries(old) if old else {}, _entries(new)
        ops: list[tuple[str, str, str]] = []
        for key, member in before.items():
            if after.get(key) != member:
                ops.append((key, "-", member))
        for key, member in after.items():
            if before.get(key) != member:
                ops.append((key, "+", member))
        rev = self._case_write(new.id, "new" if old is None else str(old.rev), case_to_hash(new), _deltas(old, new),
                               ops)
        if rev < 0:
            raise CaseConflict(new.id)
        return rev

    def _case_write(self, case_id: str, rev_read: str, fields: Mapping[str, str], deltas: list[tuple[str, int]],
                    ops: list[tuple[str, str, str]]) -> int:
        """Run case_write: the case's fields, its bucket's counter deltas, its index ops (key, "+" or "-", member)."""
        bucket = keys.case_bucket(case_id)
        assert bucket is not None
        args: list[Any] = [rev_read, len(fields)]
        for name, value in fields.items():
            args += [name, value]
        args.append(len(deltas))
        for name, delta in deltas:
            args += [name, delta]
        for _, op, member in ops:
            args += [op, member]
        return int(self.script("case_write")(keys=[keys.case(case_id), keys.case_counts(bucket),
                                                   *(key for key, _, _ in ops)], args=args))

    def note_case_notified(self, case_id: str, rev: int) -> None:
        """Record that the notice of this rev of the case was emitted."""
        self.redis.hset(keys.case(case_id), "notified", str(rev))

    def active_cases_of(self, email: str) -> list[Case]:
        """Return a customer's open and contacted cases, soonest due first (a customer has few)."""
        bucket = keys.bucket_of(email)
        members = self.redis.zrange(keys.customer_cases(bucket, email), "[0|", "(1|", bylex=True)
        return self.cases([member.rpartition("|")[2] for member in members])

    def case_page(self, owner: str | None, status: str | None, overdue_before_ms: int | None, limit: int,
                  after: str | None) -> tuple[list[Case], str | None]:
        """Return a page of cases (open before closed, then by due time) and the cursor of the next one.

        owner: an owner, UNASSIGNED, or None for any; status: one of CASE_STATUSES or None; overdue_before_ms: only
        open and contacted cases due before this time; after: the cursor a previous page returned.
        """
        owner_part = ANY if owner is None else (UNASSIGNED if owner == UNASSIGNED else f"={owner}")
        low = f"({after}" if after else "-"
        high = "+"
        if overdue_before_ms is not None:
            low = low if after else "[0|"  # every overdue member starts "0|"
            high = f"(0|{overdue_before_ms:015d}|"
        pipe = self.redis.pipeline(transaction=False)
        for bucket in range(keys.BUCKETS):
            pipe.zrange(keys.case_index(bucket, owner_part, status or ANY), low, high, bylex=True, offset=0,
                        num=limit + 1)
        members = sorted(member for page in pipe.execute() for member in page)
        shown = members[:limit]
        following = shown[-1] if len(members) > limit else None
        return self.cases([member.rpartition("|")[2] for member in shown]), following

    def case_counts(self, now_ms: int, label: str | None = None) -> CaseCounts:
        """Add up every bucket's case counters and count the open cases past due (one round trip, 2 x BUCKETS
        commands): of every case, or of the cases of one label (labels_of; exact once cases_labelled())."""
        prefix = f"{label}|" if label is not None else ""
        fields = [prefix + name for name in COUNTERS] + [CARRIED + prefix + name for name in COUNTERS]
        pipe = self.redis.pipeline(transaction=False)
        for bucket in range(keys.BUCKETS):
            pipe.hmget(keys.case_counts(bucket), fields)
            listed = keys.case_index(bucket, ANY, ANY) if label is None else keys.case_label_index(bucket, label)
            pipe.zlexcount(listed, "[0|", f"(0|{now_ms:015d}|")
        replies = pipe.execute()
        sums = dict.fromkeys(COUNTERS, 0)
        overdue = 0
        for counters, late in zip(replies[::2], replies[1::2], strict=True):
            for position, value in enumerate(counters):
                sums[COUNTERS[position % len(COUNTERS)]] += int(value or 0)
            overdue += int(late)
        return CaseCounts(overdue=overdue, **sums)

    def cases_labelled(self) -> bool:
        """Say whether every case kept is labelled, so that the counters of a label count all of its cases: the
        labelling said so (its mark, "1:<difference>"), and no case was opened unlabelled since (by a version before
        labels, during a rolling upgrade), which the cases opened and those labelled, parted from the difference the
        labelling saw, would tell (one round trip)."""
        mark, unlabelled = self._labelling()
        return mark == f"1:{unlabelled}"

    def labelled_mark(self) -> str:
        """Return the labelling's mark as stored: what a walk labelling the cases reads when it begins
        (mark_cases_labelled), and compares when it ends."""
        return str(self.redis.get(keys.CASES_LABELLED) or "")

    def _labelling(self) -> tuple[str, int]:
        """Return the mark, and how many more cases the buckets counted opened than labelled (cases that left by
        retention before they could be labelled stay in the difference)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(keys.CASES_LABELLED)
        for bucket in range(keys.BUCKETS):
            pipe.hmget(keys.case_counts(bucket), ["opened", LABELLED])
        mark, *counted = pipe.execute()
        return str(mark or ""), sum(int(opened or 0) - int(labelled or 0) for opened, labelled in counted)

    def mark_cases_labelled(self, read: str) -> bool:
        """Say every case is labelled (with the difference of opened and labelled counts as it is now), unless one
        was carried in unlabelled since the mark was read; say whether it was said."""
        _, unlabelled = self._labelling()
        return bool(self.script("mark_labelled")(keys=[keys.CASES_LABELLED], args=[read, f"1:{unlabelled}"]))

    def label_case(self, case: Case, labels: tuple[str, ...]) -> bool:
        """Label a case opened before labels (its counters and indexes under each label with it); False when it
        changed since it was read (read it again) or is gone."""
        try:
            return self.write_case(replace(case, labels=labels), case) > 0
        except CaseConflict:
            return False

    def cases_with_surveys(self, batch: int = 500) -> Iterator[list[tuple[Case, Survey | None]]]:
        """Yield every case kept (open and contacted ones first in each bucket), a batch at a time, each with the survey
        whose answer opened it (None when that survey is no longer stored): what case numbers narrowed by the survey's
        dimensions are counted from. A batch costs three round trips; the walk, the cases kept."""
        for found in self.iter_cases(batch):
            surveys = filed.read_many(self, [case.survey for case in found if case.survey])
            by_sid = {survey.sid: survey for raw in surveys if (survey := survey_from_hash(raw))}
            yield [(case, by_sid.get(case.survey)) for case in found]

    def iter_cases(self, batch: int = 500, buckets: Iterable[int] | None = None) -> Iterator[list[Case]]:
        """Yield every case kept (open and contacted ones first in each bucket), a batch at a time (two round trips);
        of the given buckets only, when given."""
        for bucket in range(keys.BUCKETS) if buckets is None else buckets:
            low = "-"
            while True:
                members = self.redis.zrange(keys.case_index(bucket, ANY, ANY), low, "+", bylex=True, offset=0,
                                            num=batch)
                if not members:
                    break
                yield self.cases([member.rpartition("|")[2] for member in members])
                if len(members) < batch:
                    break
                low = f"({members[-1]}"

    def restore_case(self, case: Case, dry_run: bool = False) -> bool:
        """Write a case carried from another install as it was stored there (its rev, the rev its notice was emitted
        for, its new survey's mark), with its counters and index entries, unless a case of its id exists; say whether
        it was (or, dry, would be) written. Nothing is announced: the install it came from told it."""
        if dry_run:
            return not self.redis.exists(keys.case(case.id))
        # Written after the script's own first rev, "rev" sets the one the case had.
        fields = case_to_hash(case) | {"rev": str(case.rev), "notified": str(case.notified)}
        if case.resurvey:
            fields["resurvey"] = case.resurvey
        ops = [(key, "+", member) for key, member in _entries(case).items()]
        written = self._case_write(case.id, "new", fields, _deltas(None, case), ops) > 0
        if written and case.labels is None:  # carried without labels (an export from before them): beat labels it
            self.redis.set(keys.CASES_LABELLED, f"0:{secrets.token_hex(6)}")
        return written

    def case_counters(self, bucket: int) -> dict[str, int]:
        """Return every counter field of a bucket as stored (COUNTERS, each label's, what a replay carried)."""
        return {name: int(value) for name, value in self.redis.hgetall(keys.case_counts(bucket)).items()}

    def carried_case_counts(self) -> dict[str, int]:
        """Return what the counters carried from the install a replay came from (CARRIED), by counter field."""
        return {name[len(CARRIED):]: count for name, count in self.case_counters(0).items()
                if name.startswith(CARRIED) and count}

    def carry_case_counts(self, counts: Mapping[str, int], dry_run: bool = False) -> bool:
        """Set the counts carried from the install a replay came from (by counter field: "opened", or a label's
        "team=billing|opened"); say whether they were (or would be) new."""
        wanted = {name: count for name, count in counts.items() if is_counter_field(name) and count}
        held = self.carried_case_counts()
        if wanted == held:
            return False
        if not dry_run:
            pipe = self.redis.pipeline(transaction=True)  # one key
            if held:
                pipe.hdel(keys.case_counts(0), *(CARRIED + name for name in held))
            if wanted:
                pipe.hset(keys.case_counts(0), mapping={CARRIED + name: str(count) for name, count in wanted.items()})
            pipe.execute()
        return True

    def cases_of(self, email: str) -> list[Case]:
        """Return every case of a customer (open ones first, then by due time)."""
        listed = keys.customer_cases(keys.bucket_of(email), email)
        return self.cases([member.rpartition("|")[2] for member in self.redis.zrange(listed, 0, -1)])

    def erase_cases(self, email: str) -> int:
        """Delete every case of a customer with its index entries and counts (GDPR erasure); return how many.

        Each case goes by a compare-and-set on its rev, read again while another writer changes it: what it counts
        and where it is listed move with a lead's change or its labelling (tracker.cases.labels), and a delete of an
        older read would leave those behind for ever."""
        bucket = keys.bucket_of(email)
        erased = 0
        for found in self.cases_of(email):
            case: Case | None = found
            for _ in range(ERASE_ATTEMPTS):
                if case is None:
                    break
                entries = _entries(case)
                counted = [(name, count) for name, count in counted_fields(case).items() if count]
                args: list[Any] = [str(case.rev), len(counted)]
                for name, count in counted:
                    args += [name, count]
                done = int(self.script("case_erase")(keys=[keys.case(case.id), keys.case_counts(bucket), *entries],
                                                     args=[*args, *entries.values()]))
                if done >= 0:
                    erased += done
                    break
                case = self.case(case.id)
            else:
                raise CaseConflict(found.id)
        self.redis.delete(keys.customer_cases(bucket, email))
        return erased

    def retire_closed_cases(self, cutoff_ms: int, limit: int = 500) -> int:
        """Delete up to limit closed cases per bucket that were due and closed before cutoff_ms (retention); the
        counters keep their numbers. Return how many went."""
        pipe = self.redis.pipeline(transaction=False)
        for bucket in range(keys.BUCKETS):
            pipe.zrange(keys.case_index(bucket, ANY, ANY), "[1|", f"(1|{cutoff_ms:015d}|", bylex=True, offset=0,
                        num=limit)
        old = self.cases([member.rpartition("|")[2] for page in pipe.execute() for member in page])
        retire = self.redis.pipeline(transaction=False)
        for case in old:
            if case.closed and case.closed_at_ms is not None and case.closed_at_ms < cutoff_ms:
                entries = _entries(case)
                self.script("case_retire")(keys=[keys.case(case.id), *entries],
                                           args=[str(case.rev), *entries.values()], client=retire)
        return sum(int(done) for done in retire.execute())

    def schedule_resurvey(self, case_id: str, at_ms: int) -> bool:
        """Add the due entry of a closed case's new survey unless it is there; say whether it was added now."""
        member = f"{keys.CASE_DUE}{case_id}"
        return bool(self.redis.zadd(keys.due_of(member), {member: at_ms}, nx=True))

    def resurveys_due(self, case_ids: Sequence[str]) -> dict[str, int]:
        """Return when the new survey of each of these cases is due, of those whose new survey is still to send (its
        due entry is there until the sweep sends it; a lease's end while a sweep holds it); one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for case_id in case_ids:
            member = f"{keys.CASE_DUE}{case_id}"
            pipe.zscore(keys.due_of(member), member)
        return {case_id: int(score) for case_id, score in zip(case_ids, pipe.execute(), strict=True)
                if score is not None}

    def carry_resurvey(self, case_id: str, due_ms: int, dry_run: bool = False) -> int:
        """Note on a case carried from another install when its new survey was due there, once (carry_resurvey.lua);
        return 1 when noted now (dry: would be), 0 when noted before, -1 when there is no such case, -2 when its
        closing scheduled no new survey. Dry, a case not there yet (its line not written) counts as to note."""
        if dry_run:
            return 0 if self.redis.hexists(keys.case(case_id), RESURVEY_DUE) else 1
        return int(self.script("carry_resurvey")(keys=[keys.case(case_id)], args=[f"{keys.CASE_DUE}{case_id}", due_ms]))

    def carried_resurvey(self, case_id: str) -> int | None:
        """Return when the new survey of a case carried from another install was due there (carry_resurvey), or
        None."""
        due = self.redis.hget(keys.case(case_id), RESURVEY_DUE)
        return int(due) if due else None

    def mark_resurvey(self, case_id: str, member: str) -> bool:
        """Note on the case that its new survey was scheduled (once: a later closing schedules none)."""
        return bool(self.redis.hsetnx(keys.case(case_id), "resurvey", member))

    def drop_resurvey(self, member: str, claimed: int) -> bool:
        """Drop a claimed resurvey due entry unless another claim moved it."""
        return bool(self.script("drop_due")(keys=[keys.due_of(member)], args=[member, claimed]))

    def throttle_left_ms(self, email: str) -> int:
        """Return how long the customer's survey throttle is still held (0 when free)."""
        return max(0, int(self.redis.pttl(keys.customer(email, "throttle"))))
