"""A chunk of leased due surveys: each entry checked before its send, the lease of the rest moved on in time."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from tests.support import drain, due_score, iso, solved_event
from tracker.mail.smtp import SmtpSender
from tracker.store import Store
from tracker.surveys import due
from tracker.surveys.outcome import Outcome


def solve_due(post_event: Any, store: Store, settings: Any, count: int) -> list[str]:
    """Make count tickets due now, for as many customers; return their due members, oldest due first."""
    for n in range(count):
        event = solved_event(ticket=f"C-{n}", email_address=f"c{n}@example.no", at=iso(60 - n))
        event["customer"]["id"] = f"c-{n}"
        assert post_event("standard", json.dumps(event).encode()).status_code == 202
    drain(store, settings)
    return [f"standard:C-{n}" for n in range(count)]


class Clock:
    """The chunk's clock: from start_ms, on by step_ms at every reading; before a reading, what happens then."""

    def __init__(self, start_ms: int, step_ms: int, at: dict[int, Callable[[], None]] | None = None) -> None:
        self.now, self.step, self.readings, self.at = start_ms - step_ms, step_ms, 0, at or {}

    def __call__(self) -> int:
        self.readings += 1
        if self.readings in self.at:
            self.at[self.readings]()
        self.now += self.step
        return self.now


class Watching:
    """The real SMTP sender, noting at each send the due score of every entry of the chunk."""

    def __init__(self, sender: SmtpSender, store: Store, members: list[str], clock: Clock) -> None:
        self.sender, self.store, self.members, self.clock = sender, store, members, clock
        self.seen: list[tuple[int, list[float | None]]] = []

    def send(self, message: Any) -> None:
        self.seen.append((self.clock.now, [due_score(self.store, m) for m in self.members]))
        self.sender.send(message)


def chunk_of(post_event: Any, store: Store, settings: Any, count: int, step_ms: int,
             at: dict[int, Callable[[], None]] | None = None) -> tuple[list[str], int, due.Chunk, Watching]:
    members = solve_due(post_event, store, settings, count)
    claim = store.claim_all_due(int(time.time() * 1000), due.LEASE_MS, 100)
    assert claim.members == members
    clock = Clock(claim.claimed - due.LEASE_MS, step_ms, at)
    with SmtpSender(settings.smtp_url) as sender:
        watching = Watching(sender, store, members, clock)
        chunk = due.send_chunk(store, settings, watching, members, claim.claimed, clock=clock)
    return members, claim.claimed, chunk, watching


def test_the_rest_of_a_chunk_stays_leased_and_its_lease_moves_on_every_renewal_interval(
        post_event, store, settings, smtp) -> None:
    step = 1_000
    members, _claimed, chunk, watching = chunk_of(post_event, store, settings, 12, step)
    assert [chunk.outcomes[m] for m in members] == [Outcome("sent")] * 12 and chunk.left == []
    renewals = []
    for index, (now, scores) in enumerate(watching.seen):
        waiting = [s for s in scores[index + 1:] if s is not None]
        assert len(waiting) == len(members) - index - 1  # none of the rest sent or dropped meanwhile
        assert all(s >= now + due.LEASE_MS - due.RENEW_EVERY_MS for s in waiting)
        renewals.append(waiting[0] - due.LEASE_MS if waiting else None)
    # Renewed at the first send and then once every RENEW_EVERY_MS, not before every send.
    expected = [watching.seen[0][0] + (i * step) // due.RENEW_EVERY_MS * due.RENEW_EVERY_MS
                for i in range(len(members) - 1)]
    assert renewals[:-1] == expected
    assert all(due_score(store, m) is None for m in members)
    assert len(smtp.wait_for(12)) == 12


def test_an_entry_another_claim_took_meanwhile_is_not_mailed_and_the_rest_go_out(
        post_event, store, settings, smtp) -> None:
    members = [f"standard:C-{n}" for n in range(4)]
    thief: list[float] = []

    def take_the_third() -> None:  # another worker's claim, as after a lapsed lease: a new score
        claimed = due_score(store, members[2])
        assert claimed is not None
        thief.append(claimed + 1)
        assert store.renew_claims([members[2]], int(claimed), int(claimed) + 1) == [members[2]]

    # The clock's fourth reading starts the third send, after the renewal of all at the first one.
    _, _claimed, chunk, _ = chunk_of(post_event, store, settings, 4, 10, at={4: take_the_third})
    assert [chunk.outcomes[m] for m in members] == [
        Outcome("sent"), Outcome("sent"), Outcome("none", "claimed_elsewhere"), Outcome("sent")]
    assert due_score(store, members[2]) == thief[0]  # left to the claim that holds it
    assert sorted(m["To"].addresses[0].addr_spec for m in smtp.wait_for(3)) == [
        "c0@example.no", "c1@example.no", "c3@example.no"]


def test_a_chunk_past_its_budget_hands_the_rest_on_under_a_fresh_lease(post_event, store, settings, smtp) -> None:
    step = due.CHUNK_BUDGET_MS // 2  # the chunk starts, sends one mail half its budget on, then is out of time
    members, claimed, chunk, _ = chunk_of(post_event, store, settings, 5, step)
    assert chunk.outcomes == {members[0]: Outcome("sent")} and chunk.left == members[1:]
    assert chunk.claimed > claimed
    assert [due_score(store, m) for m in chunk.left] == [chunk.claimed] * 4
